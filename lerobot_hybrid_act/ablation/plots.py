"""The ablation report's PNG plots (matplotlib is imported only when a plot is drawn: ``pip install
"lerobot_policy_hybrid_act[ablation]"``). ``report.py`` aggregates the runs and calls ``plots``."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from .profiles import POLICY_ORDER, VARIANTS, policy_rank

COLORS = {"act": "tab:blue", "diffusion": "tab:gray", "hybrid_act_a": "tab:orange", "hybrid_act_b": "tab:green",
          "hybrid_act_c": "tab:red", "hybrid_act_c_recon": "tab:purple"}
VARIANT_COLORS = ("tab:purple", "tab:brown", "tab:pink", "tab:olive", "tab:cyan", "gold", "navy")


def policy_color(label: str) -> str:
    """A policy's plot colour; profile variants (``VARIANTS``) without their own get one from a fixed cycle."""
    if label in COLORS:
        return COLORS[label]
    return VARIANT_COLORS[sorted(VARIANTS).index(label) % len(VARIANT_COLORS)] if label in VARIANTS else "black"


def get_in(d, *keys):
    """``d[k1][k2]...``, or None where a key (or a dict on the way) is missing."""
    for k in keys:
        if d is None or not isinstance(d, dict) or k not in d:
            return None
        d = d[k]
    return d


def plot_n_demos(task: str, items: list[dict], main_n: dict) -> int:
    """The demo count a per-task plot shows (``items``: groups or runs): the profile's main comparison, as in the
    tables, else the largest present."""
    ns = {g["n_demos"] for g in items if g["task"] == task}
    return main_n[task] if main_n.get(task) in ns else max(ns)


def plots(out: Path, groups: list[dict], runs: list[dict], label: str, main_n: dict | None = None) -> list[Path]:
    """The report's PNGs. Per-task panels show the main comparison (``main_n[task]`` demos, every seed)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    paths = []
    tasks = sorted({g["task"] for g in groups})
    # 1. the main comparison: success per policy (action queue / ensembling / z held), pooled Wilson CI, seed dots
    main_n = main_n or {}
    paths.append(_success_bars(plt, out, groups, tasks, label, main_n))
    # 2. success vs demos, for the tasks trained with several demo counts
    se_tasks = [t for t in tasks if len({g["n_demos"] for g in groups if g["task"] == t}) > 1]
    if se_tasks:
        paths.append(_success_vs_demos(plt, out, groups, se_tasks, label))
    # 3. smoothness bars
    fig, axes = plt.subplots(len(tasks), 2, figsize=(10, 3.2 * len(tasks)), squeeze=False)
    for row, task in zip(axes, tasks):
        n = plot_n_demos(task, groups, main_n)
        main = sorted([g for g in groups if g["task"] == task and g["n_demos"] == n], key=lambda g: policy_rank(g["policy"]))
        for ax, m in zip(row, ("mean_step", "jerk_rms")):
            xs = np.arange(len(main))
            for j, (mode, hatch) in enumerate((("queue", ""), ("ensemble", "//"))):
                vals, errs = [], [[], []]
                for g in main:
                    v = get_in(g, "smooth", mode, m)
                    mean = v["mean"] if v else np.nan
                    ci = v.get("ci") if v else None
                    vals.append(mean)
                    errs[0].append(mean - ci[0] if ci else 0)
                    errs[1].append(ci[1] - mean if ci else 0)
                ax.bar(xs + (j - 0.5) * 0.38, vals, 0.38, yerr=errs, capsize=2, hatch=hatch,
                       color=[policy_color(g["policy"]) for g in main], edgecolor="k",
                       label="action queue" if mode == "queue" else "temporal ensembling")
            ax.set_xticks(xs, [g["policy"] for g in main], rotation=20, fontsize=7)
            ax.set_title(f"{task}: {m}", fontsize=9)
            ax.legend(fontsize=7)
    fig.suptitle(f"Smoothness of executed actions — {label}", fontsize=9)
    fig.tight_layout()
    paths.append(_save(fig, out / "smoothness.png"))
    # 4. docking routes, act vs C (and the others if present)
    dock = [r for r in runs if r["task"] == "docking" and get_in(r, "metrics", "routes", "trajectories")]
    if dock:
        n_dock = plot_n_demos("docking", dock, main_n)
        pick = {}
        for r in sorted(dock, key=lambda r: r["seed"]):
            if r["n_demos"] == n_dock:
                pick.setdefault(r["policy"], r)
        pols = [p for p in POLICY_ORDER if p in pick]
        starts = sorted({t["start"] for p in pols for t in pick[p]["metrics"]["routes"]["trajectories"]})
        # every route start is drawn (one row each), so no start is picked for looking good
        fig, axes = plt.subplots(len(starts), len(pols), figsize=(3.2 * len(pols), 1.7 * len(starts) + 0.6),
                                 squeeze=False, sharex=True, sharey=True)
        from lerobot_hybrid_act.docking.env import DockingEnv

        env = DockingEnv(render_mode=None)
        for i, s0 in enumerate(starts):
            env.reset(seed=s0)
            lay = env.unwrapped.layout
            for ax, p in zip(axes[i], pols):
                ax.add_patch(plt.Circle((lay.obstacle_x, lay.obstacle_y), lay.obstacle_radius, color="0.6"))
                ax.plot(lay.port_x, lay.port_y, "k*", ms=9)
                for t in pick[p]["metrics"]["routes"]["trajectories"]:
                    if t["start"] == s0:
                        xy = np.asarray(t["xy"])
                        c = {0: "tab:blue", 1: "tab:red"}.get(t["route"], "k")
                        ax.plot(xy[:, 0], xy[:, 1], color=c, lw=1, alpha=0.7, ls="-" if t["success"] else "--")
                ax.set_aspect("equal")
                ax.tick_params(labelsize=6)
                if i == 0:
                    ax.set_title(f"{p} (seed {pick[p]['seed']})", fontsize=9)
                if p == pols[0]:
                    ax.set_ylabel(f"start {s0}", fontsize=8)
        env.close()
        fig.suptitle(f"Docking rollouts, {n_dock} demos, every route start (rows); blue = left, red = right, "
                     f"black = unknown (collided first), dashed = failed — {label}", fontsize=8)
        fig.tight_layout()
        paths.append(_save(fig, out / "docking_routes.png"))
    # 5. ensembling stability: success at the late checkpoints, one line per run
    late = [r for r in runs if len(r.get("late_checkpoints") or []) > 1]
    if late:
        ltasks = sorted({r["task"] for r in late})
        fig, axes = plt.subplots(1, len(ltasks), figsize=(5.5 * len(ltasks), 3.8), squeeze=False)
        for ax, task in zip(axes[0], ltasks):
            for r in sorted((r for r in late if r["task"] == task), key=lambda r: policy_rank(r["policy"])):
                ck = r["late_checkpoints"]
                for key, ls in (("eval", "-"), ("eval_ensemble", "--")):
                    pts = [(c["step"], c[key]["success_rate"]) for c in ck if key in c]
                    if pts:
                        ax.plot(*zip(*pts), ls=ls, marker="o", color=policy_color(r["policy"]),
                                label=f"{r['policy']} s{r['seed']} n{r['n_demos']}" + (" ens." if ls == "--" else ""))
            ax.set_xlabel("training step")
            ax.set_ylabel("success rate")
            ax.set_ylim(-0.03, 1.03)
            ax.set_title(task, fontsize=9)
            ax.legend(fontsize=6)
        fig.suptitle(f"Success at the late checkpoints (solid: action queue, dashed: temporal ensembling) — {label}",
                     fontsize=8)
        fig.tight_layout()
        paths.append(_save(fig, out / "checkpoint_stability.png"))
    if dock:
        # 6. z scatter
        panels = []
        for p in ("act", "hybrid_act_b", "hybrid_act_c", *VARIANTS):
            if p in pick:
                for key, v in (get_in(pick[p], "metrics", "latent", "z_scatter") or {}).items():
                    panels.append((f"{p}: {key}", np.asarray(v["z"]), np.asarray(v["route"])))
        if panels:
            fig, axes = plt.subplots(1, len(panels), figsize=(3.4 * len(panels), 3.4), squeeze=False)
            for ax, (title, z, y) in zip(axes[0], panels):
                zc = z - z.mean(0)
                if z.shape[1] >= 2 and len(z) >= 2:
                    _, _, vt = np.linalg.svd(zc, full_matrices=False)
                    p2 = zc @ vt[:2].T
                else:
                    p2 = np.c_[zc[:, 0], np.zeros(len(zc))]
                for lab, c, name in ((0, "tab:blue", "left"), (1, "tab:red", "right")):
                    ax.scatter(p2[y == lab, 0], p2[y == lab, 1], c=c, s=14, label=name)
                ax.set_title(title, fontsize=8)
                ax.set_xlabel("PC1")
                ax.legend(fontsize=7)
            fig.suptitle(f"Latent (PCA) at the first frame of held-out docking demos, coloured by route — {label}",
                         fontsize=8)
            fig.tight_layout()
            paths.append(_save(fig, out / "z_scatter.png"))
    return paths


def _success_vs_demos(plt, out: Path, groups: list[dict], tasks: list[str], label: str) -> Path:
    """Per task: success vs number of training demos, one line per policy, pooled 95% Wilson intervals."""
    fig, axes = plt.subplots(1, len(tasks), figsize=(max(7.5, 5 * len(tasks)), 4.2), squeeze=False)
    for ax, task in zip(axes[0], tasks):
        for p in POLICY_ORDER:
            gs = sorted([g for g in groups if g["task"] == task and g["policy"] == p and g["success"]],
                        key=lambda g: g["n_demos"])
            if not gs:
                continue
            x = [g["n_demos"] for g in gs]
            y = [g["success"]["rate"] for g in gs]
            ax.errorbar(x, y, yerr=list(zip(*(_wilson_err(g["success"]) for g in gs))), marker="o", capsize=3,
                        label=p, color=policy_color(p))
        ax.set_title(f"{task}")
        ax.set_xlabel("training demos")
        ax.set_ylabel("success (95% Wilson CI)")
        ax.set_ylim(-0.05, 1.05)
        ax.legend(fontsize=7)
    fig.suptitle(f"Success vs demos (lerobot-eval, episodes pooled over seeds)\n{label}", fontsize=9)
    fig.tight_layout()
    return _save(fig, out / "success_vs_demos.png")


def _wilson_err(s: dict) -> tuple[float, float]:
    """Distances from one success rate down and up to its pooled 95% Wilson bounds (a matplotlib yerr pair)."""
    return s["rate"] - s["wilson95"][0], s["wilson95"][1] - s["rate"]


SUCCESS_VARIANTS = (("success", "action queue", ""), ("success_ensemble", "temporal ensembling", "//"),
                    ("success_hold", "z held (C)", ".."))


def _success_bars(plt, out: Path, groups: list[dict], tasks: list[str], label: str, main_n: dict) -> Path:
    """Per task (the main comparison's demo count): one bar group per policy, one bar per evaluation variant, the pooled
    95% Wilson interval as error bar and each training seed's rate as a dot (the seed-to-seed spread)."""
    from matplotlib.patches import Patch

    fig, axes = plt.subplots(1, len(tasks), figsize=(max(7.5, 5.2 * len(tasks)), 4.2), squeeze=False)
    width = 0.27
    for ax, task in zip(axes[0], tasks):
        n = plot_n_demos(task, groups, main_n)
        tg = sorted([g for g in groups if g["task"] == task and g["n_demos"] == n], key=lambda g: policy_rank(g["policy"]))
        for i, g in enumerate(tg):
            for j, (key, name, hatch) in enumerate(SUCCESS_VARIANTS):
                s = g.get(key)
                if not s:
                    continue
                x = i + (j - 1) * width
                ax.bar(x, s["rate"], width, color=policy_color(g["policy"]), hatch=hatch, edgecolor="k", lw=0.5,
                       yerr=[[e] for e in _wilson_err(s)], capsize=2)
                ax.plot([x] * len(s["per_seed"]), s["per_seed"], "k.", ms=4)
        ax.set_xticks(range(len(tg)), [g["policy"] for g in tg], rotation=20, fontsize=7)
        seeds = sorted({s for g in tg for s in g["seeds"]})
        ax.set_title(f"{task} ({n} demos, {tg[0]['steps']} steps, seeds {seeds})", fontsize=9)
        ax.set_ylabel("lerobot-eval success (95% Wilson CI)")
        ax.set_ylim(0, 1.05)
        shown = [(name, h) for key, name, h in SUCCESS_VARIANTS if any(g.get(key) for g in tg)]
        ax.legend([Patch(facecolor="white", edgecolor="k", hatch=h) for _, h in shown], [name for name, _ in shown],
                  fontsize=7, loc="upper left")
    fig.suptitle(f"Task success, episodes pooled over training seeds (dots: each seed) — {label}", fontsize=9)
    fig.tight_layout()
    return _save(fig, out / "success.png")


def _save(fig, path: Path) -> Path:
    import matplotlib.pyplot as plt

    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path
