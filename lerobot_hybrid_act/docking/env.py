"""Docking: a small, fast, multimodal 2-D docking task (pure numpy / ``math``, no physics engine).

A unicycle-like vehicle starts on the left of a walled arena and must dock into a port on the right.
A circular obstacle sits (up to a small jitter) midway between start and port, so passing it on the
*left* (the +90 deg side of the start->port axis) or on the *right* is equally valid: the task is
genuinely bimodal.

Conventions
-----------
- World frame: x to the right, y up, headings in radians (counter-clockwise, 0 = +x).
- Arena: ``x in [0, ARENA_X]``, ``y in [-ARENA_Y/2, ARENA_Y/2]`` (walls on all four sides).
- Action (``float32``, shape ``(2,)``), normalized to ``[-1, 1]`` and clipped to it:
  ``action[0]`` = longitudinal acceleration command (``* max_accel`` m/s^2),
  ``action[1]`` = yaw-rate command (``* max_yaw_rate`` rad/s).
  Wrong shape or non-finite values raise ``ValueError`` *before* anything is integrated.
- Observation (gymnasium ``Dict``):
  ``agent_pos`` (6,) = ``(x, y, cos h, sin h, v, omega)`` -> LeRobot ``observation.state``;
  ``environment_state`` (7,) = ``(port_x, port_y, cos port_h, sin port_h, obst_x, obst_y, obst_r)``
  -> ``observation.environment_state``;
  with ``obs_type="pixels_state"`` also ``pixels: {"top": uint8 (H, W, 3)}`` -> ``observation.images.top``.
- Success (terminates, ``info["is_success"] = True``): vehicle within ``pos_tol`` of the port, heading
  within ``heading_tol`` of the port heading and ``|v| < speed_tol``.
  Collision with the obstacle or a wall terminates with ``info["collision"] = True``.
  ``episode_length`` steps without either -> truncation (timeout).
- Reward in ``[0, 1]`` per step, shaped by distance and alignment: ``exp(-d / 2) * (0.5 + 0.5 * align)``
  with ``align = (1 + cos(heading error)) / 2``; ``1.0`` on success, ``-1.0`` on collision.
- Seeding: ``reset(seed=s)`` draws the layout (start pose, port pose, obstacle) only from ``s``, so the
  same seed always gives the same layout (demos use seeds < 1000, LeRobot eval starts at 1000).
  ``reset(options={"layout": DockingLayout(...)})`` forces a given (validated) layout.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, fields

import gymnasium as gym
import numpy as np
from gymnasium import spaces

ARENA_X = 10.0
ARENA_Y = 7.0  # y in [-3.5, 3.5]
Y_MIN, Y_MAX = -ARENA_Y / 2, ARENA_Y / 2

STATE_DIM = 6
ENV_STATE_DIM = 7
ACTION_DIM = 2

STATE_NAMES = ["x", "y", "cos_h", "sin_h", "v", "omega"]
ENV_STATE_NAMES = ["port_x", "port_y", "port_cos_h", "port_sin_h", "obstacle_x", "obstacle_y", "obstacle_r"]
ACTION_NAMES = ["accel", "yaw_rate"]

OBS_TYPES = ("state", "pixels_state")
EPISODE_LENGTH = 200  # control steps (20 s at 10 fps): the env, its LeRobot config, the recorder and the sim robot

TASK_DESCRIPTION = "Drive the vehicle around the obstacle (left or right) and dock it into the port."


class LayoutError(ValueError):
    """An invalid docking layout or layout-randomization parameter."""


def _finite(name: str, value: float) -> float:
    try:
        value = float(value)
    except (TypeError, ValueError) as e:
        raise LayoutError(f"{name} must be a real number, got {value!r}") from e
    if not math.isfinite(value):
        raise LayoutError(f"{name} must be finite, got {value}")
    return value


@dataclass(frozen=True)
class DockingParams:
    """Physical constants and tolerances (defaults are what the benchmark uses)."""

    fps: int = 10
    vehicle_radius: float = 0.2
    max_accel: float = 1.5  # m/s^2 at |action[0]| = 1
    max_yaw_rate: float = 1.5  # rad/s at |action[1]| = 1
    min_speed: float = -0.5  # reversing allowed, slowly
    max_speed: float = 1.5
    pos_tol: float = 0.25
    heading_tol: float = 0.3  # rad (~17 deg)
    speed_tol: float = 0.3
    min_gap: float = 0.9  # free corridor required between obstacle and wall on *each* side

    def __post_init__(self):
        if not isinstance(self.fps, (int, np.integer)) or isinstance(self.fps, bool) or self.fps <= 0:
            raise ValueError(f"fps must be a positive int, got {self.fps!r}")
        for f in fields(self):
            if f.name == "fps":
                continue
            v = _finite(f.name, getattr(self, f.name))
            if f.name == "min_speed":
                if v > 0:
                    raise ValueError(f"min_speed must be <= 0, got {v}")
            elif v <= 0:
                raise ValueError(f"{f.name} must be > 0, got {v}")

    @property
    def dt(self) -> float:
        return 1.0 / self.fps


@dataclass(frozen=True)
class DockingLayout:
    """One episode's geometry. ``validate()`` checks it is inside the arena and solvable both ways."""

    start_x: float
    start_y: float
    start_heading: float
    port_x: float
    port_y: float
    port_heading: float
    obstacle_x: float
    obstacle_y: float
    obstacle_radius: float

    def validate(self, params: DockingParams | None = None) -> DockingLayout:
        p = params or DockingParams()
        for f in fields(self):
            _finite(f.name, getattr(self, f.name))
        r = p.vehicle_radius
        if self.obstacle_radius <= 0:
            raise LayoutError(f"obstacle_radius must be > 0, got {self.obstacle_radius}")
        for name, (x, y) in {"start": (self.start_x, self.start_y), "port": (self.port_x, self.port_y)}.items():
            if not (r < x < ARENA_X - r and Y_MIN + r < y < Y_MAX - r):
                raise LayoutError(
                    f"{name} position ({x:.3f}, {y:.3f}) must be inside the arena "
                    f"x in ({r}, {ARENA_X - r}), y in ({Y_MIN + r}, {Y_MAX - r})"
                )
            d = math.hypot(x - self.obstacle_x, y - self.obstacle_y)
            if d < self.obstacle_radius + r + 0.5:
                raise LayoutError(
                    f"{name} position is {d:.3f} from the obstacle centre; needs >= "
                    f"{self.obstacle_radius + r + 0.5:.3f} (obstacle radius + vehicle radius + 0.5)"
                )
        gap_left = Y_MAX - (self.obstacle_y + self.obstacle_radius)
        gap_right = (self.obstacle_y - self.obstacle_radius) - Y_MIN
        if min(gap_left, gap_right) < p.min_gap + 2 * r:
            raise LayoutError(
                f"obstacle leaves a corridor of {min(gap_left, gap_right):.3f} m on one side; both routes "
                f"need >= {p.min_gap + 2 * r:.3f} m (min_gap + vehicle diameter)"
            )
        if not (self.obstacle_radius < self.obstacle_x < ARENA_X - self.obstacle_radius):
            raise LayoutError("obstacle must lie fully inside the arena in x")
        # The obstacle must actually block the straight line start -> port (that is what makes it bimodal).
        if _point_segment_distance(
            self.obstacle_x, self.obstacle_y, self.start_x, self.start_y, self.port_x, self.port_y
        ) > 0.5 * self.obstacle_radius:
            raise LayoutError("obstacle must sit between start and port (blocking the straight line)")
        return self

    def env_state(self) -> np.ndarray:
        return np.array(
            [
                self.port_x,
                self.port_y,
                math.cos(self.port_heading),
                math.sin(self.port_heading),
                self.obstacle_x,
                self.obstacle_y,
                self.obstacle_radius,
            ],
            dtype=np.float32,
        )

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_env_state(
        cls, env_state, start_x: float = 1.0, start_y: float = 0.0, start_heading: float = 0.0
    ) -> DockingLayout:
        """Rebuild a layout from an ``observation.environment_state`` vector (start pose is not part of it)."""
        e = np.asarray(env_state, dtype=np.float64).reshape(-1)
        if e.shape != (ENV_STATE_DIM,):
            raise ValueError(f"environment_state must have {ENV_STATE_DIM} values, got shape {e.shape}")
        return cls(
            start_x=start_x,
            start_y=start_y,
            start_heading=start_heading,
            port_x=float(e[0]),
            port_y=float(e[1]),
            port_heading=math.atan2(float(e[3]), float(e[2])),
            obstacle_x=float(e[4]),
            obstacle_y=float(e[5]),
            obstacle_radius=float(e[6]),
        )


def _point_segment_distance(px, py, ax, ay, bx, by) -> float:
    dx, dy = bx - ax, by - ay
    den = dx * dx + dy * dy
    t = 0.0 if den == 0 else max(0.0, min(1.0, ((px - ax) * dx + (py - ay) * dy) / den))
    return math.hypot(px - (ax + t * dx), py - (ay + t * dy))


@dataclass(frozen=True)
class LayoutSampler:
    """Per-seed layout randomization.

    ``jitter`` scales all position/heading jitters (0 = nominal poses); the obstacle radius is drawn
    uniformly from ``obstacle_radius_range`` (pass ``(r, r)`` for a fixed radius).
    """

    jitter: float = 1.0
    obstacle_radius_range: tuple[float, float] = (1.0, 1.4)

    def __post_init__(self):
        j = _finite("jitter", self.jitter)
        if not 0.0 <= j <= 1.5:
            raise LayoutError(f"jitter must be in [0, 1.5], got {j}")
        rr = tuple(self.obstacle_radius_range)
        if len(rr) != 2:
            raise LayoutError(f"obstacle_radius_range must be (low, high), got {self.obstacle_radius_range!r}")
        lo, hi = (_finite("obstacle_radius_range", v) for v in rr)
        if not 0.3 <= lo <= hi <= 1.6:
            raise LayoutError(f"obstacle_radius_range must satisfy 0.3 <= low <= high <= 1.6, got {rr}")

    def sample(self, rng: np.random.Generator, params: DockingParams | None = None) -> DockingLayout:
        j = self.jitter
        u = rng.uniform(-1.0, 1.0, size=8)
        sx, sy, sh = 1.0 + 0.2 * j * u[0], 0.3 * j * u[1], 0.25 * j * u[2]
        px, py, ph = 8.8 + 0.3 * j * u[3], 0.4 * j * u[4], 0.3 * j * u[5]
        lo, hi = self.obstacle_radius_range
        radius = float(rng.uniform(lo, hi))
        ox = 0.5 * (sx + px) + 0.15 * j * u[6]
        oy = 0.5 * (sy + py) + 0.15 * j * u[7]
        vals = (float(v) for v in (sx, sy, sh, px, py, ph, ox, oy, radius))
        return DockingLayout(*vals).validate(params)


def wrap_angle(a: float) -> float:
    return (a + math.pi) % (2 * math.pi) - math.pi


def _parse_size(size, name: str) -> tuple[int, int]:
    if isinstance(size, (int, np.integer)) and not isinstance(size, bool):
        h = w = int(size)
    else:
        try:
            h, w = (int(s) for s in size)
        except (TypeError, ValueError) as e:
            raise ValueError(f"{name} must be an int or (height, width), got {size!r}") from e
    if not (16 <= h <= 1024 and 16 <= w <= 1024):
        raise ValueError(f"{name} must be within [16, 1024] pixels, got {(h, w)}")
    return h, w


class DockingEnv(gym.Env):
    """See the module docstring. Pure Python/numpy; one step costs a few microseconds."""

    metadata = {"render_modes": ["rgb_array"], "render_fps": 10}

    def __init__(
        self,
        obs_type: str = "state",
        image_size: int | tuple[int, int] = 96,
        render_size: int | tuple[int, int] = 256,
        render_mode: str | None = "rgb_array",
        episode_length: int = EPISODE_LENGTH,
        fps: int = 10,
        jitter: float = 1.0,
        obstacle_radius_range: tuple[float, float] = (1.0, 1.4),
        params: DockingParams | None = None,
    ):
        super().__init__()
        if obs_type not in OBS_TYPES:
            raise ValueError(f"obs_type must be one of {OBS_TYPES}, got {obs_type!r}")
        if render_mode not in (None, "rgb_array"):
            raise ValueError(f"render_mode must be None or 'rgb_array', got {render_mode!r}")
        if (
            not isinstance(episode_length, (int, np.integer))
            or isinstance(episode_length, bool)
            or episode_length <= 0
        ):
            raise ValueError(f"episode_length must be a positive int, got {episode_length!r}")
        self.params = params if params is not None else DockingParams(fps=fps)
        if params is not None and params.fps != fps and fps != 10:
            raise ValueError(f"fps={fps} conflicts with params.fps={params.fps}")
        self.sampler = LayoutSampler(jitter=jitter, obstacle_radius_range=tuple(obstacle_radius_range))
        self.obs_type = obs_type
        self.image_size = _parse_size(image_size, "image_size")
        self.render_size = _parse_size(render_size, "render_size")
        self.render_mode = render_mode
        self.episode_length = int(episode_length)
        self._max_episode_steps = self.episode_length  # read by lerobot-eval via env.call(...)
        self.metadata = {**DockingEnv.metadata, "render_fps": self.params.fps}
        self.task = "docking"
        self.task_description = TASK_DESCRIPTION

        obs = {
            "agent_pos": spaces.Box(-np.inf, np.inf, (STATE_DIM,), np.float32),
            "environment_state": spaces.Box(-np.inf, np.inf, (ENV_STATE_DIM,), np.float32),
        }
        if obs_type == "pixels_state":
            h, w = self.image_size
            obs["pixels"] = spaces.Dict({"top": spaces.Box(0, 255, (h, w, 3), np.uint8)})
        self.observation_space = spaces.Dict(obs)
        self.action_space = spaces.Box(-1.0, 1.0, (ACTION_DIM,), np.float32)

        self.layout: DockingLayout | None = None
        self._env_state: np.ndarray | None = None
        self._renderers: dict = {}
        self._x = self._y = self._h = self._v = self._w = 0.0
        self._t = 0
        self._done = True
        self.collision: str | None = None

    # ------------------------------------------------------------------ core
    def reset(self, *, seed: int | None = None, options: dict | None = None):
        super().reset(seed=seed)
        layout = (options or {}).get("layout")
        if layout is None:
            layout = self.sampler.sample(self.np_random, self.params)
        else:
            if isinstance(layout, dict):
                layout = DockingLayout(**layout)
            if not isinstance(layout, DockingLayout):
                raise LayoutError(f"options['layout'] must be a DockingLayout or dict, got {type(layout)}")
            layout.validate(self.params)
        self.layout = layout
        self._env_state = layout.env_state()
        self._renderers = {}
        self._x, self._y, self._h = layout.start_x, layout.start_y, wrap_angle(layout.start_heading)
        self._v = self._w = 0.0
        self._t = 0
        self._done = False
        self.collision = None
        return self._obs(), self._info(False)

    def step(self, action):
        if self.layout is None:
            raise RuntimeError("call reset() before step()")
        try:
            a = np.asarray(action, dtype=np.float64)
        except (TypeError, ValueError) as e:
            raise ValueError(f"action must be numeric with shape ({ACTION_DIM},), got {action!r}") from e
        if a.shape != (ACTION_DIM,):
            raise ValueError(f"action must have shape ({ACTION_DIM},), got {a.shape}")
        a0, a1 = a.tolist()
        if not (math.isfinite(a0) and math.isfinite(a1)):
            raise ValueError(f"action must be finite, got {a.tolist()} (state left unchanged)")
        p = self.params
        dt = p.dt
        a0 = -1.0 if a0 < -1.0 else (1.0 if a0 > 1.0 else a0)
        a1 = -1.0 if a1 < -1.0 else (1.0 if a1 > 1.0 else a1)

        v = self._v + p.max_accel * a0 * dt
        v = p.min_speed if v < p.min_speed else (p.max_speed if v > p.max_speed else v)
        w = p.max_yaw_rate * a1
        h = wrap_angle(self._h + w * dt)
        self._x += v * math.cos(h) * dt
        self._y += v * math.sin(h) * dt
        self._h, self._v, self._w = h, v, w
        self._t += 1

        lay = self.layout
        r = p.vehicle_radius
        x, y = self._x, self._y
        collision = None
        if math.hypot(x - lay.obstacle_x, y - lay.obstacle_y) < lay.obstacle_radius + r:
            collision = "obstacle"
        elif x < r or x > ARENA_X - r or y < Y_MIN + r or y > Y_MAX - r:
            collision = "wall"
        dist = math.hypot(x - lay.port_x, y - lay.port_y)
        herr = abs(wrap_angle(h - lay.port_heading))
        success = collision is None and dist < p.pos_tol and herr < p.heading_tol and abs(v) < p.speed_tol
        if success:
            reward = 1.0
        elif collision is not None:
            reward = -1.0
        else:
            reward = math.exp(-0.5 * dist) * (0.5 + 0.25 * (1.0 + math.cos(herr)))
        self.collision = collision
        terminated = success or collision is not None
        truncated = (not terminated) and self._t >= self.episode_length
        self._done = terminated or truncated
        return self._obs(), reward, terminated, truncated, self._info(success, dist, herr)

    def _obs(self) -> dict:
        obs = {
            "agent_pos": np.array(
                [self._x, self._y, math.cos(self._h), math.sin(self._h), self._v, self._w], dtype=np.float32
            ),
            "environment_state": self._env_state.copy(),
        }
        if self.obs_type == "pixels_state":
            obs["pixels"] = {"top": self._draw(self.image_size)}
        return obs

    def _info(self, success: bool, dist: float | None = None, herr: float | None = None) -> dict:
        lay = self.layout
        if dist is None:
            dist = math.hypot(self._x - lay.port_x, self._y - lay.port_y)
            herr = abs(wrap_angle(self._h - lay.port_heading))
        return {
            "is_success": bool(success),
            "collision": self.collision is not None,
            "obstacle_collision": self.collision == "obstacle",
            "wall_collision": self.collision == "wall",
            "distance": float(dist),
            "heading_error": float(herr),
            "steps": int(self._t),
        }

    # ------------------------------------------------------------- accessors
    @property
    def pose(self) -> tuple[float, float, float, float]:
        """(x, y, heading, speed) of the vehicle."""
        return self._x, self._y, self._h, self._v

    @property
    def elapsed_steps(self) -> int:
        return self._t

    # -------------------------------------------------------------- render
    def _draw(self, size: tuple[int, int]) -> np.ndarray:
        from .render import TopDownRenderer

        rend = self._renderers.get(size)
        if rend is None:
            rend = self._renderers[size] = TopDownRenderer(self.layout, size, self.params.vehicle_radius)
        return rend.draw(self._x, self._y, self._h)

    def render(self):
        if self.render_mode != "rgb_array":
            return None
        if self.layout is None:
            raise RuntimeError("call reset() before render()")
        return self._draw(self.render_size)


GYM_ID = "lerobot_hybrid_act/Docking-v0"
if GYM_ID not in gym.registry:
    gym.register(id=GYM_ID, entry_point="lerobot_hybrid_act.docking.env:DockingEnv")
