"""Metrics for docking rollouts: outcome, route (mode) labels, mode coverage/entropy, mode averaging, style.

Everything works on plain arrays so it can score expert demos, policy rollouts logged by any loop, or
hand-made trajectories:

- ``xy``: (T, 2) vehicle positions (include the start position as the first row);
- ``layout``: the episode's ``DockingLayout`` (e.g. ``env.unwrapped.layout`` or
  ``DockingLayout.from_env_state(obs["environment_state"], start_x, start_y)``).

Route convention: the axis goes from the start position (``xy[0]``) to the port; ``ROUTE_LEFT`` (0)
passes the obstacle on the +90 deg (counter-clockwise) side of that axis, ``ROUTE_RIGHT`` (1) on the
other side, ``ROUTE_UNKNOWN`` (-1) if the trajectory never came abreast of the obstacle.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable, Sequence

import numpy as np

from .env import DockingEnv, DockingLayout, DockingParams, wrap_angle
from .expert import ROUTE_LEFT, ROUTE_NAMES, ROUTE_RIGHT, ROUTE_UNKNOWN

__all__ = [
    "ROUTE_LEFT",
    "ROUTE_RIGHT",
    "ROUTE_UNKNOWN",
    "ROUTE_NAMES",
    "axis_frame",
    "route_label",
    "route_labels",
    "mode_stats",
    "mode_coverage",
    "mode_entropy",
    "enters_obstacle_region",
    "route_switches",
    "obstacle_clearance",
    "passing_clearance",
    "style_from_trajectory",
    "episode_outcome",
    "collect_rollout",
    "summarize_rollouts",
]


# passing clearance ~= c0 + slope * style for the expert (fit on 300 demos, noise 0.05); the reference
# path itself has style_clearance(style) = 0.35 + 0.5 * style.
PASSING_CLEARANCE_FIT = (0.30, 0.494)


def _xy(xy) -> np.ndarray:
    a = np.asarray(xy, dtype=np.float64)
    if a.ndim != 2 or a.shape[1] < 2 or len(a) == 0:
        raise ValueError(f"xy must be a (T, 2) array of positions with T >= 1, got shape {a.shape}")
    a = a[:, :2]
    if not np.all(np.isfinite(a)):
        raise ValueError("xy contains non-finite values")
    return a


def axis_frame(xy, layout: DockingLayout) -> tuple[np.ndarray, np.ndarray]:
    """Trajectory in the (along, lateral) frame centred on the obstacle.

    ``along`` increases from start towards the port, ``lateral`` > 0 is the left side.
    Returns (along (T,), lateral (T,)).
    """
    a = _xy(xy)
    start = a[0]
    port = np.array([layout.port_x, layout.port_y])
    axis = port - start
    n = np.linalg.norm(axis)
    if n < 1e-9:
        raise ValueError("trajectory starts at the port; the route axis is undefined")
    axis = axis / n
    normal = np.array([-axis[1], axis[0]])
    rel = a - np.array([layout.obstacle_x, layout.obstacle_y])
    return rel @ axis, rel @ normal


def route_label(xy, layout: DockingLayout, min_offset: float = 0.0) -> int:
    """Which side of the obstacle the trajectory passes (or attempts to pass).

    Among the points whose along-axis coordinate lies within the obstacle's extent
    ``[-R, R]`` (relative to its centre), take the one closest to abreast of the centre; the sign of its
    lateral offset gives the route. ``ROUTE_UNKNOWN`` if no point reaches the obstacle's extent or
    ``|offset| <= min_offset``.
    """
    along, lateral = axis_frame(xy, layout)
    mask = np.abs(along) <= layout.obstacle_radius
    if not np.any(mask):
        return ROUTE_UNKNOWN
    idx = np.flatnonzero(mask)
    k = idx[np.argmin(np.abs(along[idx]))]
    off = lateral[k]
    if abs(off) <= min_offset:
        return ROUTE_UNKNOWN
    return ROUTE_LEFT if off > 0 else ROUTE_RIGHT


def route_labels(trajectories: Iterable, layouts) -> np.ndarray:
    """Vectorised ``route_label`` (``layouts``: one layout for all, or a sequence)."""
    trajectories = list(trajectories)
    if isinstance(layouts, DockingLayout):
        layouts = [layouts] * len(trajectories)
    return np.array([route_label(t, lay) for t, lay in zip(trajectories, layouts, strict=True)], dtype=np.int64)


def mode_stats(labels: Sequence[int], n_modes: int = 2) -> dict:
    """Coverage and entropy of route labels (unknown labels are counted but excluded from both).

    - ``coverage``: fraction of the ``n_modes`` routes that appear at least once (0, 0.5, 1 for 2 routes);
    - ``entropy``: Shannon entropy (bits) of the route distribution among known labels;
    - ``normalized_entropy``: entropy / log2(n_modes) (1.0 = perfectly balanced);
    - ``fractions``: {"left", "right", "unknown"} fractions over *all* labels.
    """
    lab = np.asarray(list(labels), dtype=np.int64).reshape(-1)
    total = len(lab)
    known = lab[lab >= 0]
    counts = np.array([np.sum(known == m) for m in range(n_modes)], dtype=np.float64)
    coverage = float(np.mean(counts > 0)) if n_modes > 0 else 0.0
    if counts.sum() > 0:
        p = counts / counts.sum()
        p = p[p > 0]
        entropy = float(-(p * np.log2(p)).sum())
    else:
        entropy = 0.0
    norm = entropy / math.log2(n_modes) if n_modes > 1 else 0.0
    fractions = {
        ROUTE_NAMES.get(m, str(m)): (float(counts[m] / total) if total else 0.0) for m in range(n_modes)
    }
    fractions["unknown"] = float(np.sum(lab < 0) / total) if total else 0.0
    return {
        "coverage": coverage,
        "entropy": entropy,
        "normalized_entropy": float(norm),
        "fractions": fractions,
        "n": int(total),
    }


def mode_coverage(labels: Sequence[int], n_modes: int = 2) -> float:
    return mode_stats(labels, n_modes)["coverage"]


def mode_entropy(labels: Sequence[int], n_modes: int = 2) -> float:
    return mode_stats(labels, n_modes)["entropy"]


def obstacle_clearance(xy, layout: DockingLayout) -> float:
    """Minimum distance from the trajectory (vehicle centre) to the obstacle surface (< 0: inside)."""
    a = _xy(xy)
    d = np.hypot(a[:, 0] - layout.obstacle_x, a[:, 1] - layout.obstacle_y)
    return float(d.min() - layout.obstacle_radius)


def enters_obstacle_region(
    xy, layout: DockingLayout, margin: float = DockingParams.vehicle_radius, core_fraction: float = 0.5
) -> bool:
    """Mode-averaging detector: does the trajectory drive *into* the obstacle head-on?

    Fires when some point is within ``R + margin`` of the obstacle centre (i.e. the vehicle body touches
    the obstacle, with the default ``margin`` = vehicle radius) while its lateral offset from the
    start->port axis through the obstacle centre is below ``core_fraction * (R + margin)`` -- the
    signature of averaging the left and right modes into a straight line. A committed route that only
    grazes the obstacle on its flank does not fire.
    """
    along, lateral = axis_frame(xy, layout)
    rr = layout.obstacle_radius + margin
    inside = np.hypot(along, lateral) < rr
    core = np.abs(lateral) < core_fraction * rr
    return bool(np.any(inside & core))


def route_switches(xy, layout: DockingLayout, commit_fraction: float = 0.5) -> int:
    """How often the trajectory changes sides of the start->port axis before it is past the obstacle.

    A side counts as taken once the lateral offset exceeds ``commit_fraction`` x the obstacle radius (hysteresis:
    wobbling around the axis near the start is no switch); every later crossing to a committed other side, while
    the vehicle has not yet passed the obstacle's far edge, is one switch. 0 for a committed route.
    """
    along, lateral = axis_frame(xy, layout)
    threshold = commit_fraction * layout.obstacle_radius
    side, switches = 0, 0
    for a, lat in zip(along, lateral, strict=True):
        if a > layout.obstacle_radius:
            break
        if abs(lat) > threshold:
            new = 1 if lat > 0 else -1
            switches += int(side != 0 and new != side)
            side = new
    return switches


def passing_clearance(xy, layout: DockingLayout) -> float:
    """Lateral clearance from the obstacle surface when abreast of its centre (``nan`` if never abreast)."""
    along, lateral = axis_frame(xy, layout)
    mask = np.abs(along) <= layout.obstacle_radius
    if not np.any(mask):
        return float("nan")
    idx = np.flatnonzero(mask)
    k = idx[np.argmin(np.abs(along[idx]))]
    return float(abs(lateral[k]) - layout.obstacle_radius)


def style_from_trajectory(xy, layout: DockingLayout) -> float:
    """Estimate the expert style value in [0, 1] from the passing clearance (inverse of ``style_clearance``).

    The expert's reference path passes at ``style_clearance(style)`` from the obstacle surface; pure
    pursuit cuts the arc slightly, so the map is the linear fit ``PASSING_CLEARANCE_FIT`` measured on
    expert demos (correlation with the true style > 0.99 at noise 0.05). A read-out for rollouts, not exact.
    """
    c = passing_clearance(xy, layout)
    if not math.isfinite(c):
        return float("nan")
    c0, slope = PASSING_CLEARANCE_FIT
    return float(np.clip((c - c0) / slope, 0.0, 1.0))


def episode_outcome(
    xy, heading, speed, layout: DockingLayout, params: DockingParams | None = None
) -> dict:
    """Recompute success / collision / time to dock from a logged trajectory (row 0 = start state).

    Returns ``{"success", "collision", "collision_type", "steps", "time_to_dock"}``; ``steps`` is the
    number of steps until the episode would have ended (success or collision) or ``T - 1``;
    ``time_to_dock`` is in seconds (``nan`` without success).
    """
    p = params or DockingParams()
    a = _xy(xy)
    h = np.asarray(heading, dtype=np.float64).reshape(-1)
    v = np.asarray(speed, dtype=np.float64).reshape(-1)
    if not (len(h) == len(v) == len(a)):
        raise ValueError(f"xy, heading, speed must have the same length, got {len(a)}, {len(h)}, {len(v)}")
    r = p.vehicle_radius
    from .env import ARENA_X, Y_MAX, Y_MIN

    for t in range(1, len(a)):
        x, y = a[t]
        if math.hypot(x - layout.obstacle_x, y - layout.obstacle_y) < layout.obstacle_radius + r:
            return _outcome(False, "obstacle", t, p)
        if x < r or x > ARENA_X - r or y < Y_MIN + r or y > Y_MAX - r:
            return _outcome(False, "wall", t, p)
        if (
            math.hypot(x - layout.port_x, y - layout.port_y) < p.pos_tol
            and abs(wrap_angle(h[t] - layout.port_heading)) < p.heading_tol
            and abs(v[t]) < p.speed_tol
        ):
            return _outcome(True, None, t, p)
    return _outcome(False, None, len(a) - 1, p)


def _outcome(success: bool, collision: str | None, steps: int, p: DockingParams) -> dict:
    return {
        "success": success,
        "collision": collision is not None,
        "collision_type": collision,
        "steps": int(steps),
        "time_to_dock": steps * p.dt if success else float("nan"),
    }


def collect_rollout(
    env: DockingEnv,
    act_fn: Callable[[dict], np.ndarray],
    seed: int | None = None,
    layout: DockingLayout | None = None,
    max_steps: int | None = None,
) -> dict:
    """Roll out ``act_fn(obs) -> action (2,)`` in a (non-vector) ``DockingEnv`` from ``seed`` (or ``layout``).

    Returns the same keys as ``expert.run_expert_episode`` minus ``route``/``style`` (use
    ``route_label`` / ``style_from_trajectory``): ``xy``, ``heading``, ``speed``, ``actions``,
    ``success``, ``collision``, ``steps``, ``layout``, plus the env's per-step ``rewards``.
    """
    obs, info = env.reset(seed=seed, options={"layout": layout} if layout is not None else None)
    base = env.unwrapped
    x, y, h, v = base.pose
    xy, hs, vs, actions, rewards = [(x, y)], [h], [v], [], []
    limit = max_steps if max_steps is not None else base.episode_length
    terminated = truncated = False
    while not (terminated or truncated) and len(actions) < limit:
        a = np.asarray(act_fn(obs), dtype=np.float32).reshape(-1)
        actions.append(a)
        obs, r, terminated, truncated, info = env.step(a)
        rewards.append(float(r))
        x, y, h, v = base.pose
        xy.append((x, y))
        hs.append(h)
        vs.append(v)
    return {
        "xy": np.asarray(xy),
        "heading": np.asarray(hs),
        "speed": np.asarray(vs),
        "actions": np.asarray(actions, dtype=np.float32).reshape(-1, 2),
        "rewards": np.asarray(rewards),
        "success": bool(info["is_success"]),
        "collision": bool(info["collision"]),
        "steps": int(info["steps"]),
        "layout": base.layout,
    }


def summarize_rollouts(rollouts: Sequence[dict], fps: int = DockingParams.fps) -> dict:
    """Aggregate rollouts (dicts with ``xy``, ``layout``, ``success``, ``collision``, ``steps``).

    Returns success / collision rates, mean time to dock (s, over successes), mode stats of the route
    labels, the mode-averaging rate (``enters_obstacle_region``), the share of rollouts that switch routes before
    passing the obstacle (``route_switches``) and the mean/std of the style estimate.
    Rollouts from one start state give the per-start coverage/entropy the ablation asks for.
    """
    if len(rollouts) == 0:
        raise ValueError("no rollouts to summarize")
    succ = np.array([bool(r["success"]) for r in rollouts])
    coll = np.array([bool(r["collision"]) for r in rollouts])
    steps = np.array([int(r["steps"]) for r in rollouts])
    labels = [route_label(r["xy"], r["layout"]) for r in rollouts]
    avg = np.array([enters_obstacle_region(r["xy"], r["layout"]) for r in rollouts])
    switches = np.array([route_switches(r["xy"], r["layout"]) for r in rollouts])
    styles = np.array([style_from_trajectory(r["xy"], r["layout"]) for r in rollouts])
    ok = np.isfinite(styles)
    return {
        "n": len(rollouts),
        "success_rate": float(succ.mean()),
        "collision_rate": float(coll.mean()),
        "time_to_dock_s": float(steps[succ].mean() / fps) if succ.any() else float("nan"),
        "mode_averaging_rate": float(avg.mean()),
        "route_switch_rate": float((switches > 0).mean()),
        "routes": mode_stats(labels),
        "route_labels": labels,
        "style_mean": float(styles[ok].mean()) if ok.any() else float("nan"),
        "style_std": float(styles[ok].std()) if ok.any() else float("nan"),
    }
