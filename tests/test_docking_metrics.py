"""Docking metrics on hand-made trajectories: route labels, coverage/entropy, mode averaging, outcome."""

import math

import numpy as np
import pytest

from conftest import NOMINAL_DOCKING_LAYOUT  # noqa: E402
from lerobot_hybrid_act.docking.env import DockingEnv, DockingLayout
from lerobot_hybrid_act.docking.expert import run_expert_episode
from lerobot_hybrid_act.docking.metrics import (
    ROUTE_LEFT,
    ROUTE_RIGHT,
    ROUTE_UNKNOWN,
    collect_rollout,
    enters_obstacle_region,
    episode_outcome,
    mode_coverage,
    mode_entropy,
    mode_stats,
    obstacle_clearance,
    passing_clearance,
    route_label,
    route_labels,
    style_from_trajectory,
    summarize_rollouts,
)

LAYOUT = NOMINAL_DOCKING_LAYOUT


def detour(side: float, clearance: float = 0.6, n: int = 200) -> np.ndarray:
    """Start -> half-ellipse around the obstacle on `side` (+1 left / -1 right) -> port."""
    x = np.linspace(LAYOUT.start_x, LAYOUT.port_x, n)
    half = (LAYOUT.port_x - LAYOUT.start_x) / 2
    peak = LAYOUT.obstacle_radius + clearance
    y = side * peak * np.sqrt(np.clip(1 - ((x - LAYOUT.obstacle_x) / half) ** 2, 0, 1))
    return np.stack([x, y], axis=1)


def straight(n: int = 200, until: float | None = None) -> np.ndarray:
    x = np.linspace(LAYOUT.start_x, until if until is not None else LAYOUT.port_x, n)
    return np.stack([x, np.zeros_like(x)], axis=1)


def test_route_labels_of_hand_made_paths():
    assert route_label(detour(+1), LAYOUT) == ROUTE_LEFT
    assert route_label(detour(-1), LAYOUT) == ROUTE_RIGHT
    # a path that stops before reaching the obstacle has no route
    assert route_label(straight(until=3.0), LAYOUT) == ROUTE_UNKNOWN
    # dead-centre straight line: no side
    assert route_label(straight(), LAYOUT) == ROUTE_UNKNOWN
    # small offsets below min_offset are unknown
    assert route_label(detour(+1, clearance=-1.15), LAYOUT, min_offset=0.1) == ROUTE_UNKNOWN
    np.testing.assert_array_equal(
        route_labels([detour(+1), detour(-1), straight(until=2.0)], LAYOUT), [0, 1, -1]
    )


def test_route_label_uses_start_to_port_axis():
    # rotate the whole scene by 90 degrees: "left" of an upward axis is -x
    rot = np.array([[0.0, -1.0], [1.0, 0.0]])
    lay = DockingLayout(
        start_x=0.0, start_y=1.0, start_heading=math.pi / 2,
        port_x=0.0, port_y=8.8, port_heading=math.pi / 2,
        obstacle_x=0.0, obstacle_y=4.9, obstacle_radius=1.2,
    )  # fmt: skip
    left = detour(+1) @ rot.T
    assert left[:, 0].min() < -1.5  # really on the -x side
    assert route_label(left, lay) == ROUTE_LEFT
    assert route_label(detour(-1) @ rot.T, lay) == ROUTE_RIGHT


def test_mode_coverage_and_entropy_values():
    s = mode_stats([0, 0, 1, 1])
    assert s["coverage"] == 1.0 and math.isclose(s["entropy"], 1.0) and math.isclose(s["normalized_entropy"], 1.0)
    assert s["fractions"] == {"left": 0.5, "right": 0.5, "unknown": 0.0}
    assert mode_coverage([0, 0, 0]) == 0.5 and mode_entropy([0, 0, 0]) == 0.0
    assert mode_coverage([1]) == 0.5
    assert math.isclose(mode_entropy([0, 0, 0, 1]), -(0.75 * math.log2(0.75) + 0.25 * math.log2(0.25)))
    s = mode_stats([0, 1, -1, -1])
    assert s["coverage"] == 1.0 and math.isclose(s["entropy"], 1.0) and s["fractions"]["unknown"] == 0.5
    empty = mode_stats([])
    assert empty["coverage"] == 0.0 and empty["entropy"] == 0.0 and empty["n"] == 0
    assert mode_stats([-1, -1])["coverage"] == 0.0


def test_mode_averaging_detector():
    # averaged modes = straight through the obstacle
    assert enters_obstacle_region(straight(), LAYOUT)
    # ... also when the (env-terminated) trajectory ends at the obstacle's front
    assert enters_obstacle_region(straight(until=LAYOUT.obstacle_x - LAYOUT.obstacle_radius - 0.1), LAYOUT)
    # committed routes do not fire, not even a flank graze
    assert not enters_obstacle_region(detour(+1), LAYOUT)
    assert not enters_obstacle_region(detour(-1), LAYOUT)
    assert not enters_obstacle_region(detour(+1, clearance=0.05), LAYOUT)
    assert not enters_obstacle_region(straight(until=3.0), LAYOUT)
    assert obstacle_clearance(straight(), LAYOUT) < 0 < obstacle_clearance(detour(+1), LAYOUT)
    assert math.isclose(passing_clearance(detour(-1, clearance=0.6), LAYOUT), 0.6, abs_tol=0.01)
    assert math.isnan(passing_clearance(straight(until=2.0), LAYOUT))
    assert style_from_trajectory(detour(+1, clearance=0.05), LAYOUT) == 0.0
    assert style_from_trajectory(detour(+1, clearance=2.0), LAYOUT) == 1.0
    with pytest.raises(ValueError):
        route_label(np.zeros((3, 3, 2)), LAYOUT)
    with pytest.raises(ValueError):
        enters_obstacle_region([[1.0, np.nan]], LAYOUT)


def test_episode_outcome_from_trajectory():
    xy = detour(+1)
    n = len(xy)
    heading = np.zeros(n)
    speed = np.linspace(1.0, 0.1, n)
    out = episode_outcome(xy, heading, speed, LAYOUT)
    assert out["success"] and not out["collision"]
    assert n - 10 < out["steps"] < n  # docks in the last few samples (within pos_tol of the port)
    assert math.isclose(out["time_to_dock"], out["steps"] * 0.1)
    # arriving too fast is not a success
    assert not episode_outcome(xy, heading, np.ones(n), LAYOUT)["success"]
    # wrong heading is not a success
    assert not episode_outcome(xy, np.full(n, 1.0), speed, LAYOUT)["success"]
    out = episode_outcome(straight(), np.zeros(200), np.ones(200), LAYOUT)
    assert out["collision"] and out["collision_type"] == "obstacle" and math.isnan(out["time_to_dock"])
    wall = np.stack([np.full(50, 2.0), np.linspace(0, 3.49, 50)], axis=1)
    assert episode_outcome(wall, np.zeros(50), np.ones(50), LAYOUT)["collision_type"] == "wall"
    with pytest.raises(ValueError):
        episode_outcome(xy, heading[:-1], speed, LAYOUT)


def test_metrics_agree_with_env_on_expert_and_collect_rollout():
    env = DockingEnv()
    eps = [run_expert_episode(env, s, noise=0.05, record_obs=False) for s in range(30)]
    for e in eps:
        out = episode_outcome(e["xy"], e["heading"], e["speed"], e["layout"])
        assert out["success"] == e["success"] and out["steps"] == e["steps"]
    summary = summarize_rollouts(eps)
    assert summary["success_rate"] == 1.0 and summary["mode_averaging_rate"] == 0.0
    assert summary["routes"]["coverage"] == 1.0 and summary["routes"]["normalized_entropy"] > 0.9
    assert 5.0 < summary["time_to_dock_s"] < 15.0
    assert 0.2 < summary["style_mean"] < 0.8 and summary["style_std"] > 0.15
    # a "mode averaging" policy: full throttle straight ahead from one start state
    rolls = [collect_rollout(env, lambda obs: np.array([0.6, 0.0]), layout=LAYOUT) for _ in range(3)]
    s = summarize_rollouts(rolls)
    assert s["success_rate"] == 0.0 and s["collision_rate"] == 1.0 and s["mode_averaging_rate"] == 1.0
    assert s["routes"]["coverage"] == 0.0
    with pytest.raises(ValueError):
        summarize_rollouts([])


def test_route_switches_counts_side_changes_before_the_obstacle():
    from lerobot_hybrid_act.docking.metrics import route_switches

    lay = NOMINAL_DOCKING_LAYOUT  # start (1, 0), obstacle (4.9, 0) r 1.2, port (8.8, 0)
    x = np.linspace(1.0, 8.8, 80)
    committed = np.stack([x, 1.8 * np.sin(np.pi * (x - 1.0) / 7.8)], axis=1)
    assert route_switches(committed, lay) == 0
    wobble = committed.copy()
    wobble[:10, 1] = 0.3 * np.sin(np.arange(10))  # small lateral wobble near the start: no commitment, no switch
    assert route_switches(wobble, lay) == 0
    switching = committed.copy()
    switching[x < 3.0, 1] *= -1  # starts right of the axis, then goes left around the obstacle
    switching[x < 3.0, 1] -= 1.0
    assert route_switches(switching, lay) == 1
    after = committed.copy()
    after[x > 6.5, 1] *= -1  # crossing the axis once past the obstacle is the approach to the port, not a switch
    assert route_switches(after, lay) == 0
