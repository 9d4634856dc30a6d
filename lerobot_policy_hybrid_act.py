"""Entry module LeRobot imports for the `lerobot_policy_hybrid_act` distribution (registers everything)."""

import lerobot_hybrid_act  # noqa: F401
