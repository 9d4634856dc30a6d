"""Scripted multimodal docking expert.

Per episode the expert draws
- a **route**: ``ROUTE_LEFT`` (0, pass the obstacle on the +90 deg side of the start->port axis) or
  ``ROUTE_RIGHT`` (1), 50/50;
- a continuous **style** in ``[0, 1]``: 0 = tight swing around the obstacle and slow cruise, 1 = wide
  swing and fast cruise (clearance ``0.35 + 0.5 * style`` m from the obstacle surface, cruise speed
  ``0.8 + 0.6 * style`` m/s);
and then tracks a smooth path (start -> arc around the obstacle -> pre-dock point -> port) with pure
pursuit and a speed profile that slows down into the port. Gaussian action noise (``noise``, in
normalized action units) is added on every step.

Route and style are drawn from ``expert_rng(seed)``, independent of the layout stream, so the same
layout seed can be demonstrated with either route.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from .env import DockingEnv, DockingLayout, DockingParams, wrap_angle

ROUTE_LEFT = 0
ROUTE_RIGHT = 1
ROUTE_UNKNOWN = -1
ROUTE_NAMES = {ROUTE_LEFT: "left", ROUTE_RIGHT: "right", ROUTE_UNKNOWN: "unknown"}


def expert_rng(seed: int) -> np.random.Generator:
    """Expert randomness for a demo seed (independent from the env's layout RNG)."""
    return np.random.default_rng([int(seed), 0xD0C])


def route_side(route: int) -> float:
    if route == ROUTE_LEFT:
        return 1.0
    if route == ROUTE_RIGHT:
        return -1.0
    raise ValueError(f"route must be ROUTE_LEFT (0) or ROUTE_RIGHT (1), got {route!r}")


def style_clearance(style: float) -> float:
    return 0.35 + 0.5 * style


def style_cruise_speed(style: float) -> float:
    return 0.8 + 0.6 * style


def _catmull_rom(points: np.ndarray, samples_per_seg: int = 12) -> np.ndarray:
    p = np.concatenate([points[:1], points, points[-1:]], axis=0)
    t = np.linspace(0.0, 1.0, samples_per_seg, endpoint=False)[:, None]
    out = []
    for i in range(1, len(p) - 2):
        p0, p1, p2, p3 = p[i - 1], p[i], p[i + 1], p[i + 2]
        out.append(
            0.5
            * (
                2 * p1
                + (-p0 + p2) * t
                + (2 * p0 - 5 * p1 + 4 * p2 - p3) * t**2
                + (-p0 + 3 * p1 - 3 * p2 + p3) * t**3
            )
        )
    out.append(points[-1:])
    return np.concatenate(out, axis=0)


def plan_path(
    layout: DockingLayout, route: int, style: float, start_xy: tuple[float, float] | None = None
) -> np.ndarray:
    """Dense (N, 2) reference path for a route/style; extends 0.6 m beyond the port along its heading."""
    s = route_side(route)
    sx, sy = start_xy if start_xy is not None else (layout.start_x, layout.start_y)
    port = np.array([layout.port_x, layout.port_y])
    pdir = np.array([math.cos(layout.port_heading), math.sin(layout.port_heading)])
    start = np.array([sx, sy])
    axis = port - start
    axis /= np.linalg.norm(axis)
    normal = np.array([-axis[1], axis[0]]) * s
    c = np.array([layout.obstacle_x, layout.obstacle_y])
    rho = layout.obstacle_radius + style_clearance(style)
    # arc from 150 deg to 30 deg (measured from -axis side through the route side)
    thetas = np.deg2rad(np.linspace(145.0, 35.0, 5))
    arc = [c + rho * (math.cos(th) * axis + math.sin(th) * normal) for th in thetas]
    predock = port - 1.3 * pdir
    pts = np.array([start, *arc, predock, port - 0.5 * pdir, port, port + 0.6 * pdir])
    return _catmull_rom(pts)


@dataclass
class DockingExpert:
    """Pure-pursuit tracker of ``plan_path(layout, route, style)``; call ``act(env_state_tuple)``."""

    layout: DockingLayout
    route: int
    style: float
    noise: float = 0.0
    rng: np.random.Generator | None = None
    params: DockingParams = DockingParams()

    def __post_init__(self):
        route_side(self.route)
        if not (math.isfinite(self.style) and 0.0 <= self.style <= 1.0):
            raise ValueError(f"style must be in [0, 1], got {self.style}")
        if not (math.isfinite(self.noise) and self.noise >= 0):
            raise ValueError(f"noise must be >= 0, got {self.noise}")
        self.path = plan_path(self.layout, self.route, self.style)
        seg = np.diff(self.path, axis=0)
        self._cum = np.concatenate([[0.0], np.cumsum(np.linalg.norm(seg, axis=1))])
        self._idx = 0
        self.cruise = style_cruise_speed(self.style)
        if self.rng is None:
            self.rng = np.random.default_rng(0)

    def act(self, x: float, y: float, heading: float, v: float) -> np.ndarray:
        p = self.params
        lay = self.layout
        # progress along the path: nearest point in a forward window
        lo, hi = self._idx, min(len(self.path), self._idx + 40)
        d2 = np.sum((self.path[lo:hi] - (x, y)) ** 2, axis=1)
        self._idx = lo + int(np.argmin(d2))
        look = 0.45 + 0.35 * max(v, 0.0)
        j = int(np.searchsorted(self._cum, self._cum[self._idx] + look))
        tx, ty = self.path[min(j, len(self.path) - 1)]
        alpha = wrap_angle(math.atan2(ty - y, tx - x) - heading)
        dist_t = math.hypot(tx - x, ty - y)
        omega = 2.0 * max(v, 0.4) * math.sin(alpha) / max(dist_t, 1e-3)
        # speed: cruise, slow in sharp turns, stop into the port
        dport = math.hypot(lay.port_x - x, lay.port_y - y)
        v_des = min(self.cruise, 0.55 * dport + 0.02, 1.6 / (1.0 + 2.0 * abs(alpha)))
        a_acc = 2.0 * (v_des - v)
        action = np.array([a_acc / p.max_accel, omega / p.max_yaw_rate])
        if self.noise > 0:
            action = action + self.rng.normal(0.0, self.noise, size=2)
        return np.clip(action, -1.0, 1.0).astype(np.float32)

    def act_obs(self, agent_pos) -> np.ndarray:
        """Act from an ``agent_pos`` / ``observation.state`` vector ``(x, y, cos h, sin h, v, omega)``."""
        s = np.asarray(agent_pos, dtype=np.float64).reshape(-1)
        return self.act(float(s[0]), float(s[1]), math.atan2(float(s[3]), float(s[2])), float(s[4]))

    @classmethod
    def from_observation(
        cls, agent_pos, env_state, route: int, style: float, noise: float = 0.0, rng=None
    ) -> DockingExpert:
        """Build an expert from a *first* observation (e.g. inside a vector env / lerobot-eval loop)."""
        s = np.asarray(agent_pos, dtype=np.float64).reshape(-1)
        layout = DockingLayout.from_env_state(
            env_state, start_x=float(s[0]), start_y=float(s[1]), start_heading=math.atan2(s[3], s[2])
        )
        return cls(layout, route, style, noise=noise, rng=rng)

    def act_env(self, env: DockingEnv) -> np.ndarray:
        x, y, h, v = env.unwrapped.pose
        return self.act(x, y, h, v)


def sample_route_style(rng: np.random.Generator) -> tuple[int, float]:
    route = ROUTE_LEFT if rng.random() < 0.5 else ROUTE_RIGHT
    style = float(rng.uniform(0.0, 1.0))
    return route, style


def run_expert_episode(
    env: DockingEnv,
    seed: int,
    noise: float = 0.05,
    route: int | None = None,
    style: float | None = None,
    record_obs: bool = True,
) -> dict:
    """Reset ``env`` with ``seed`` and roll out the expert. Route/style default to ``expert_rng(seed)`` draws.

    Returns a dict with ``observations`` (list of obs dicts, the one *before* each action), ``actions``
    (T, 2), ``xy`` (T+1, 2), ``heading`` (T+1,), ``speed`` (T+1,), ``success``, ``collision``, ``steps``,
    ``route``, ``style``, ``layout``.
    """
    rng = expert_rng(seed)
    r0, s0 = sample_route_style(rng)
    route = r0 if route is None else route
    style = s0 if style is None else style
    obs, info = env.reset(seed=seed)
    base = env.unwrapped
    expert = DockingExpert(base.layout, route, style, noise=noise, rng=rng, params=base.params)
    observations, actions = [], []
    x, y, h, v = base.pose
    xy, hs, vs = [(x, y)], [h], [v]
    terminated = truncated = False
    while not (terminated or truncated):
        a = expert.act(x, y, h, v)
        if record_obs:
            observations.append(obs)
        actions.append(a)
        obs, _, terminated, truncated, info = env.step(a)
        x, y, h, v = base.pose
        xy.append((x, y))
        hs.append(h)
        vs.append(v)
    return {
        "observations": observations,
        "actions": np.asarray(actions, dtype=np.float32).reshape(-1, 2),
        "xy": np.asarray(xy),
        "heading": np.asarray(hs),
        "speed": np.asarray(vs),
        "success": bool(info["is_success"]),
        "collision": bool(info["collision"]),
        "steps": int(info["steps"]),
        "route": int(route),
        "style": float(style),
        "layout": base.layout,
        "final_obs": obs,
    }
