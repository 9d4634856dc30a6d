"""Robot type ``docking_sim`` (``--robot.type=docking_sim``): the docking task behind LeRobot's ``Robot``
interface. Only the config lives here (imported with the plugin); the robot is in ``docking_sim.py``."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from lerobot.robots.config import RobotConfig


@RobotConfig.register_subclass("docking_sim")
@dataclass(kw_only=True)
class DockingSimConfig(RobotConfig):
    # Camera "top" (the docking env's top-down view). LeRobot's policies need it: through a robot, the
    # layout (port, obstacle) only reaches the policy as these pixels and the `*.pos` state values.
    camera: bool = True
    image_height: int = 96
    image_width: int = 96
    # Each episode ends on success, collision or after `episode_length` actions; the next one starts at
    # once with layout seed `seed + episode index` (lerobot-eval's seeds start at 1000 too).
    episode_length: int = 200
    seed: int = 1000
    jitter: float = 1.0
    # Artificial latency. An action sent at control step t is applied at step t + actuation_delay_steps
    # (zero actions fill the gap at the start of an episode); get_observation() takes
    # observation_latency_s seconds of wall time, like a slow sensor or link.
    actuation_delay_steps: int = 0
    observation_latency_s: float = 0.0
    # One JSON line per finished episode: {"episode", "seed", "success", "collision", "steps", "travelled"}.
    episode_log: Path | None = None

    def __post_init__(self):
        super().__post_init__()
        if self.episode_length < 1:
            raise ValueError(f"docking_sim episode_length must be >= 1, got {self.episode_length}")
        if self.actuation_delay_steps < 0:
            raise ValueError(f"docking_sim actuation_delay_steps must be >= 0, got {self.actuation_delay_steps}")
        if self.observation_latency_s < 0:
            raise ValueError(f"docking_sim observation_latency_s must be >= 0, got {self.observation_latency_s}")
        for name in ("image_height", "image_width"):
            if not 16 <= getattr(self, name) <= 1024:
                raise ValueError(f"docking_sim {name} must be within [16, 1024] pixels, got {getattr(self, name)}")
