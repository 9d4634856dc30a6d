"""Docking benchmark: a bimodal (left/right route) 2-D docking task with a scripted multimodal expert.

Submodules: ``env`` (gymnasium env, layouts), ``expert`` (scripted route/style expert), ``metrics``
(success, collisions, route labels, mode coverage/entropy, mode-averaging detector), ``recording``
(``DockingRecorder`` for ``hybrid-act-record --task docking``), ``render`` (top-down RGB images).
Importing this package is cheap (numpy + gymnasium only).
"""

from .env import (
    ACTION_DIM,
    ENV_STATE_DIM,
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
    "STATE_DIM",
    "DockingEnv",
    "DockingLayout",
    "DockingParams",
    "LayoutError",
    "LayoutSampler",
]
