"""Docking benchmark: a bimodal (left/right route) 2-D docking task with a scripted multimodal expert.

Submodules: ``env`` (gymnasium env, layouts), ``env_config`` (LeRobot env type ``docking``), ``expert`` (scripted route/style expert), ``metrics``
(success, collisions, route labels, mode coverage/entropy, mode-averaging detector), ``recording``
(``DockingRecorder`` for ``hybrid-act-record --task docking``), ``render`` (top-down RGB images).
Importing this package is cheap (numpy + gymnasium only).
"""

from .env import (
    ACTION_DIM,
    ENV_STATE_DIM,
    EPISODE_LENGTH,
    STATE_DIM,
    DockingEnv,
    DockingLayout,
    DockingParams,
    LayoutError,
    LayoutSampler,
)

__all__ = [
    "ACTION_DIM",
    "ENV_STATE_DIM",
    "EPISODE_LENGTH",
    "STATE_DIM",
    "DockingEnv",
    "DockingLayout",
    "DockingParams",
    "LayoutError",
    "LayoutSampler",
]
