"""lerobot_hybrid_act: ACT x action diffusion policies for LeRobot.

Importing this package registers, with LeRobot's draccus registries:
- the policy types ``hybrid_act_a``, ``hybrid_act_b``, ``hybrid_act_c`` (configs only; LeRobot imports
  ``modeling_hybrid_act`` / ``processor_hybrid_act`` lazily by naming convention);
- the env types ``docking`` and ``aloha_fast`` (``docking.env_config``, ``aloha.env_config``);
- the robot types of ``lerobot_hybrid_act.robots`` (``docking_sim``, ``aloha_sim``), simulated robots for ``lerobot-rollout``
  and async inference.

Keep this import cheap: no torch models, MuJoCo or gym_aloha at import time.
"""

from .configuration_hybrid_act import (
    HybridActAConfig,
    HybridActBConfig,
    HybridActCConfig,
    HybridActConfig,
    POLICY_TYPES,
)
from .aloha import env_config as _aloha_env  # noqa: F401  (registers the env types)
from .docking import env_config as _docking_env  # noqa: F401
from . import robots  # noqa: F401  (registers robot types)

__all__ = ["HybridActConfig", "HybridActAConfig", "HybridActBConfig", "HybridActCConfig", "POLICY_TYPES"]
