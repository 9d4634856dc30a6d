"""``hybrid-act-record --task docking``: scripted multimodal docking demos -> LeRobotDataset frames.

Protocol (see ``lerobot_hybrid_act.record``): ``fps``, ``task_description``, ``features(image_size, cameras)``,
``record_episode(seed, noise, image_size, cameras) -> (frames, success, episode_info)``.

Per frame: ``observation.state`` (6,), ``observation.environment_state`` (7,), ``action`` (2,), optionally
``observation.images.top`` (video, H x W x 3), and the per-episode labels repeated on every frame:
``episode.route`` (int64 (1,): 0 = left, 1 = right) and ``episode.style`` (float32 (1,), in [0, 1]).
These keys do not start with ``observation.``/``action``, so LeRobot policies ignore them as inputs
(``dataset_to_policy_features`` skips them) while metrics can read them from the dataset.

``noise`` is the standard deviation of Gaussian noise added to the expert's normalized actions
(``0.05`` is a good value; the CLI's default ``0.0`` gives noise-free tracking -- route and style are
still random per seed). ``seed`` fixes both the layout (``env.reset(seed=seed)``, identical to what
``lerobot-eval`` gets for that seed) and the expert's route/style draw.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from .env import (
    ACTION_NAMES,
    ENV_STATE_NAMES,
    EPISODE_LENGTH,
    STATE_NAMES,
    TASK_DESCRIPTION,
    DockingEnv,
    DockingParams,
)
from .expert import ROUTE_LEFT, ROUTE_NAMES, ROUTE_RIGHT, run_expert_episode

CAMERAS = ("top",)
ROUTE_KEY = "episode.route"
STYLE_KEY = "episode.style"


def _norm_size(image_size) -> tuple[int, int]:
    if image_size is None:
        return (96, 96)
    if isinstance(image_size, (int, np.integer)):
        return int(image_size), int(image_size)
    h, w = image_size
    return int(h), int(w)


def _norm_cameras(cameras) -> list[str]:
    if cameras is None:
        return []
    if isinstance(cameras, str):
        cameras = [c for c in cameras.split(",")]
    cams = [c.strip() for c in cameras if c and c.strip() and c.strip().lower() != "none"]
    for c in cams:
        if c not in CAMERAS:
            raise ValueError(f"Unknown camera {c!r} for docking; expected one of {list(CAMERAS)} (or none).")
    return list(dict.fromkeys(cams))


class DockingRecorder:
    fps: int = DockingParams.fps
    task_description: str = TASK_DESCRIPTION
    episode_length: int = EPISODE_LENGTH
    routes: tuple[int, ...] = (ROUTE_LEFT, ROUTE_RIGHT)  # ``hybrid-act-record --routes-per-layout 2``

    def __init__(self, episode_length: int = EPISODE_LENGTH):
        self.episode_length = episode_length
        self._env: DockingEnv | None = None
        self._env_key = None

    def features(self, image_size=None, cameras: Sequence[str] | None = None) -> dict:
        cams = _norm_cameras(cameras)
        feats = {
            "observation.state": {"dtype": "float32", "shape": (len(STATE_NAMES),), "names": list(STATE_NAMES)},
            "observation.environment_state": {
                "dtype": "float32",
                "shape": (len(ENV_STATE_NAMES),),
                "names": list(ENV_STATE_NAMES),
            },
            "action": {"dtype": "float32", "shape": (len(ACTION_NAMES),), "names": list(ACTION_NAMES)},
            ROUTE_KEY: {"dtype": "int64", "shape": (1,), "names": ["route"]},
            STYLE_KEY: {"dtype": "float32", "shape": (1,), "names": ["style"]},
        }
        if cams:
            h, w = _norm_size(image_size)
            if not (16 <= h <= 1024 and 16 <= w <= 1024):
                raise ValueError(f"docking image size must be within [16, 1024] pixels, got {(h, w)}")
            feats["observation.images.top"] = {
                "dtype": "video",
                "shape": (h, w, 3),
                "names": ["height", "width", "channels"],
            }
        return feats

    def _get_env(self, image_size, cams: list[str]) -> DockingEnv:
        key = (_norm_size(image_size), bool(cams))
        if self._env is None or self._env_key != key:
            self._env = DockingEnv(
                obs_type="pixels_state" if cams else "state",
                image_size=key[0],
                episode_length=self.episode_length,
            )
            self._env_key = key
        return self._env

    def record_episode(
        self, seed: int, noise: float, image_size=None, cameras: Sequence[str] | None = None, route: int | None = None
    ) -> tuple[list[dict], bool, dict]:
        """One demo of layout ``seed``; ``route`` forces the route (default: the seed's own 50/50 draw). The
        style and the action noise come from the seed either way, so the two routes of a layout share them."""
        cams = _norm_cameras(cameras)
        env = self._get_env(image_size, cams)
        ep = run_expert_episode(env, int(seed), noise=float(noise), route=route)
        route = np.array([ep["route"]], dtype=np.int64)
        style = np.array([ep["style"]], dtype=np.float32)
        frames = []
        for obs, action in zip(ep["observations"], ep["actions"], strict=True):
            frame = {
                "observation.state": obs["agent_pos"].astype(np.float32),
                "observation.environment_state": obs["environment_state"].astype(np.float32),
                "action": np.asarray(action, dtype=np.float32),
                ROUTE_KEY: route.copy(),
                STYLE_KEY: style.copy(),
            }
            if cams:
                frame["observation.images.top"] = obs["pixels"]["top"]
            frames.append(frame)
        info = {
            "seed": int(seed),
            "route": int(ep["route"]),
            "route_name": ROUTE_NAMES[int(ep["route"])],
            "style": float(ep["style"]),
            "steps": int(ep["steps"]),
            "collision": bool(ep["collision"]),
            "layout": {k: float(v) for k, v in ep["layout"].to_dict().items()},
        }
        return frames, bool(ep["success"]), info

    def close(self) -> None:
        if self._env is not None:
            self._env.close()
            self._env = None
