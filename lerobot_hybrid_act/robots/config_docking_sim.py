"""Robot type ``docking_sim`` (``--robot.type=docking_sim``): the docking task behind LeRobot's ``Robot``
interface. Only the config lives here (imported with the plugin); the robot is in ``docking_sim.py``."""

from dataclasses import dataclass

from lerobot.robots.config import RobotConfig

from ..docking.env import EPISODE_LENGTH
from .sim_robot import SimRobotConfig


@RobotConfig.register_subclass("docking_sim")
@dataclass(kw_only=True)
class DockingSimConfig(SimRobotConfig):
    # Camera "top" (the docking env's top-down view). The hybrid policies (like ACT) need a camera when the
    # environment state is not a separate input, which it cannot be through a robot.
    camera: bool = True
    image_height: int = 96
    image_width: int = 96
    jitter: float = 1.0  # layout randomization scale (0 = always the nominal layout)
    episode_length: int = EPISODE_LENGTH

    def __post_init__(self):
        super().__post_init__()
        for name in ("image_height", "image_width"):
            if not 16 <= getattr(self, name) <= 1024:
                raise ValueError(f"docking_sim {name} must be within [16, 1024] pixels, got {getattr(self, name)}")
