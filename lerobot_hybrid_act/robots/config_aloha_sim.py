"""Robot type ``aloha_sim`` (``--robot.type=aloha_sim``): ALOHA sim (``aloha_fast``'s physics, reward and
success) behind LeRobot's ``Robot`` interface. Only the config lives here (imported with the plugin); the
robot is in ``aloha_sim.py``, which imports MuJoCo."""

from dataclasses import dataclass, field

from lerobot.robots.config import RobotConfig

from ..aloha import CAMERAS, EPISODE_LENGTH, TASKS
from .sim_robot import SimRobotConfig


@RobotConfig.register_subclass("aloha_sim")
@dataclass(kw_only=True)
class AlohaSimConfig(SimRobotConfig):
    task: str = "transfer_cube"  # or "insertion"
    # named camera_names: RobotConfig reserves `cameras` for real camera configs
    camera_names: list[str] = field(default_factory=lambda: ["top"])
    image_height: int = 480
    image_width: int = 640
    episode_length: int = EPISODE_LENGTH

    def __post_init__(self):
        super().__post_init__()
        if self.task not in TASKS:
            raise ValueError(f"aloha_sim task must be one of {list(TASKS)}, got {self.task!r}")
        for cam in self.camera_names:
            if cam not in CAMERAS:
                raise ValueError(f"aloha_sim: unknown camera {cam!r}; expected one of {list(CAMERAS)}")
        for name in ("image_height", "image_width"):
            if not 8 <= getattr(self, name) <= 4096:
                raise ValueError(f"aloha_sim {name} must be within [8, 4096] pixels, got {getattr(self, name)}")
