"""Aggregate ``<out>/runs/*.json`` into ``results.json``, PNG plots and ``README.md`` (the profile's results page).

Aggregation per (task, policy, n_demos) over the training seeds present:

- success rates: episodes pooled over seeds, 95% Wilson interval on the pooled count (``k``/``n``), and
  the per-seed rates;
- every other metric: with one seed, the run's mean and its 95% bootstrap CI over items (observations,
  episodes, starts); with several seeds, the mean of the per-seed means and a 95% bootstrap CI over seeds.
Every number carries its ``seeds`` and ``n``. The report states which planned runs exist.
"""

from __future__ import annotations

import json
import math
import time
from collections import defaultdict
from pathlib import Path

import numpy as np

from lerobot_hybrid_act.stats import bootstrap_mean_ci, wilson_interval

from .plots import get_in, plots
from .profiles import POLICY_ORDER, policy_rank

METRIC_DEFS = {
    "success": "success rate from lerobot-eval's per-episode `successes` (eval seeds 1000..), 95% Wilson CI; with "
               "several training seeds the episodes are pooled, so the interval leaves out the seed-to-seed spread, "
               "which the per-seed rates after it show (`per seed 30/16/34%`, in seed order)",
    "success_ensemble": "the same checkpoint evaluated with temporal ensembling (coeff 0.01, a chunk every step)",
    "late_checkpoints": "ensembling stability: the last training checkpoints (profile `late_checkpoints` of "
                        "`checkpoints_per_run`: 3 of 5 in quick/full), each evaluated by lerobot-eval without / with "
                        "temporal ensembling on the same episodes; spread = max - min success over them. A run "
                        "with a head-fitting phase (hybrid_act_c's `prior_fit_steps`) has only its final "
                        "checkpoint: the earlier ones carry a head never fitted to the final model",
    "success_hold": "hybrid_act_c evaluated with `--policy.z_mode=hold`: one z ~ p(z|obs) drawn at the episode's "
                    "first chunk and kept (default `sample`: a fresh z every chunk); no ensembling",
    "max_reward": "mean over lerobot-eval episodes of the episode's max reward (ALOHA: stage reached, 0-4; "
                  "docking: the shaped approach reward, 1 = docked)",
    "collision_rate": "docking: fraction of in-process rollouts (seeds 2000..) ending in a collision",
    "chunk_mse": "MSE of the predicted chunk vs the held-out demo's chunk, standardised action space "
                 "((a-mean)/std of the training data), first n_action_steps steps",
    "best_of_k_mse": "min over K sampled chunks of the chunk MSE (stochastic policies)",
    "mean_of_k_mse": "chunk MSE of the mean of K sampled chunks",
    "diversity": "mean pairwise RMS distance between K chunks sampled for the same observation",
    "mean_step": "mean ||a_{t+1} - a_t|| of executed actions (in-process rollouts)",
    "jerk_rms": "RMS of the third difference of executed actions",
    "boundary_ratio": "mean jump at chunk boundaries (t = k*n_action_steps) / mean step elsewhere",
    "route_coverage": "docking: fraction of the 2 routes seen over R rollouts from one start (mean over starts)",
    "route_entropy": "docking: entropy (bits) of the route distribution over those R rollouts",
    "same_route_free": "docking: fraction of rollout pairs from one start (fresh z each) taking the same route",
    "same_route_held_z": "docking B/C: fraction of rollout pairs with the same held z taking the same route",
    "follows_posterior_z": "docking C: from each route start, z = infer_style of the expert's first chunk along a "
                           "route, held for a whole rollout: fraction of rollouts taking that route",
    "route_switch_rate": "docking: fraction of in-process rollouts that change sides of the start-port axis "
                         "(after committing to one) before passing the obstacle",
    "success_sample_z": "hybrid_act_c evaluated with --policy.z_mode=sample: a fresh z ~ p(z|obs) for every chunk",
    "success_steps": "hybrid_act_c evaluated with --policy.num_inference_steps=k on the sweep episodes (seeds 3000..)",
    "success_hold_scale": "hybrid_act_c evaluated with --policy.hold_scale=s on the sweep episodes (seeds 3000..)",
    "success_hold_scale_ensemble": "the same with temporal ensembling",
    "route_acc": "docking: leave-one-out nearest-centroid accuracy of the route from the latent at an episode's "
                 "frame 0 (held-out demos): posterior mean (act, C), prior mean (C), f(obs) (B). The route is drawn "
                 "independently of the layout, so from the observation alone (prior mean, f(obs)) chance is the "
                 "ceiling; leave-one-out nearest-centroid is biased *below* 0.5 when the latent carries no route "
                 "information, so only values well above 0.5 mean anything",
    "z_usage": "hybrid_act_c: chunk diversity from z alone (K prior draws, one shared diffusion noise) vs from "
               "the noise alone (one z, K noises), same frames and units as `diversity`; ~0 from z means the "
               "denoiser ignores z",
    "kl": "KL (nats, summed over dims) on held-out chunks: act q(z|a,s) vs N(0,I); C q(z|a,obs) vs p(z|obs)",
    "active_dims": "latent terms (dims; C's categorical mode code counts as one) whose mean KL > 0.01 nats",
    "s_per_step": "lerobot-train wall time / steps (includes startup and checkpointing)",
    "updt_s": "lerobot-train's logged mean update time per step. Both times depend on the machine's load while the "
              "run trained (on this shared machine, seeds of one policy trained in different sessions differ by up to "
              "~5x); compare costs between policies with `benchmarks/speed.py`, which times every policy in one "
              "process",
    "ms_per_chunk": "median ms of one chunk (batch 1, 1 CPU thread), same process for every policy",
}


def _load_runs(out: Path) -> list[dict]:
    runs = []
    for f in sorted((out / "runs").glob("*.json")):
        try:
            runs.append(json.loads(f.read_text()))
        except json.JSONDecodeError:
            continue
    return runs


def superseded_table(out: Path, profile) -> str:
    """Runs moved to ``<out>/stale/`` (trained with earlier settings of the profile): success only, with the
    training flags that differ from today's, so that earlier results stay readable without being mixed in."""
    from .runner import run_settings, training_settings

    plan = {r["name"]: r for r in profile.runs()}
    rows = []
    for f in sorted((out / "stale").glob("*.json")):
        try:
            r = json.loads(f.read_text())
        except json.JSONDecodeError:
            continue
        p = plan.get(r.get("name"))
        if p is None:
            continue
        want = set(run_settings(profile, p))
        had = set(training_settings(r.get("train_command", [])))
        diff = (", ".join([f"`{a}`" for a in sorted(had - want)] + [f"~~`{a}`~~" for a in sorted(want - had)])
                if had else "(flags not recorded)")
        if r.get("superseded_because"):  # same flags, other defaults
            diff = ", ".join(filter(None, [diff, *r["superseded_because"]]))
        rows.append(f"| {r['name']} | {diff} | {_succ(_success([(1, r.get('eval'))]))} | "
                    f"{_succ(_success([(1, r.get('eval_ensemble'))]))} | {_succ(_success([(1, r.get('eval_hold'))]))} |")
    if not rows:
        return ""
    return ("Superseded runs (`stale/` beside this page: trained with earlier settings of this profile, "
            "not counted above; flags they had, ~~flags they lacked~~):\n\n"
            "| run | settings that differ | success | w/ ensembling | z held |\n|---|---|---|---|---|\n"
            + "\n".join(rows) + "\n")


def stability_table(runs: list[dict]) -> str:
    """Success without / with ensembling at each late checkpoint, one row per run that has them."""
    have = sorted((r for r in runs if len(r.get("late_checkpoints") or []) > 1),
                  key=lambda r: (r["task"], r["n_demos"], policy_rank(r["policy"]), r["seed"]))
    if not have:
        return ""
    n_ck = max(len(r["late_checkpoints"]) for r in have)
    lines = ["Ensembling stability: success at the late checkpoints (without / with temporal ensembling), "
             "same episodes at every checkpoint:", "",
             "| run | " + " | ".join([f"checkpoint {i}" for i in range(1, n_ck)] + ["final"])
             + " | spread | spread w/ ens. |", "|---|" + "---|" * (n_ck + 2)]
    for r in have:
        ck = r["late_checkpoints"]
        cells = ["–"] * (n_ck - len(ck))
        for c in ck:
            e, en = c.get("eval"), c.get("eval_ensemble")
            cells.append(f"{c['step']}: {e['successes']}/{e['n']}" + (f" / {en['successes']}/{en['n']}" if en else ""))
        spread = [max(v) - min(v) if v else None for v in
                  ([c[k]["success_rate"] for c in ck if k in c] for k in ("eval", "eval_ensemble"))]
        lines.append(f"| {r['name']} | " + " | ".join(cells) + f" | {_f(spread[0], 2)} | {_f(spread[1], 2)} |")
    return "\n".join(lines) + "\n"


def _current_runs(runs: list[dict], profile) -> tuple[list[dict], list[str]]:
    """Split run files into those made with the profile's current training settings and the superseded ones."""
    from .runner import run_settings, training_settings

    plan = {r["name"]: r for r in profile.runs()}
    current, old = [], []
    for r in runs:
        p = plan.get(r.get("name"))
        if p is None:  # not part of this profile (e.g. fabricated in tests, or a removed demo count): keep
            current.append(r)
            continue
        (current if training_settings(r.get("train_command", [])) == run_settings(profile, p) else old).append(r)
    return current, [r["name"] for r in old]


def _agg(per_run: list[tuple[int, dict | float | None]]) -> dict | None:
    """per_run: [(seed, {"mean","ci","n"} or a float)] -> aggregated {mean, ci, n, seeds}."""
    vals = []
    for seed, v in per_run:
        if isinstance(v, dict):
            if v.get("mean") is None:
                continue
            vals.append((seed, v))
        elif v is not None and isinstance(v, (int, float)) and math.isfinite(v):
            vals.append((seed, {"mean": float(v), "ci": None, "n": 1}))
    if not vals:
        return None
    seeds = [s for s, _ in vals]
    if len(vals) == 1:
        v = vals[0][1]
        return {"mean": v["mean"], "ci": v.get("ci"), "n": v.get("n"), "seeds": seeds, "ci_over": "items"}
    m, lo, hi = bootstrap_mean_ci([v["mean"] for _, v in vals])
    return {"mean": m, "ci": [lo, hi], "n": len(vals), "seeds": seeds, "ci_over": "seeds",
            "per_seed": [v["mean"] for _, v in vals]}


def _success(per_run: list[tuple[int, dict | None]]) -> dict | None:
    vals = [(s, e) for s, e in per_run if e]
    if not vals:
        return None
    k = sum(e["successes"] for _, e in vals)
    n = sum(e["n"] for _, e in vals)
    lo, hi = wilson_interval(k, n)
    return {"rate": k / n, "k": k, "n": n, "wilson95": [lo, hi], "seeds": [s for s, _ in vals],
            "per_seed": [e["success_rate"] for _, e in vals],
            "max_reward_mean": float(np.mean([e["max_reward_mean"] for _, e in vals]))}


def _sweep(rs: list[dict], prefix: str, suffix: str) -> dict[float, dict | None]:
    """A setting swept in evaluation keys ``<prefix><value><suffix>`` (e.g. ``eval_steps4``): value -> success."""
    keys = {k for r in rs for k in r if k.startswith(prefix) and k.endswith(suffix)}
    values = {}
    for k in keys:
        v = k.removeprefix(prefix).removesuffix(suffix) if suffix else k.removeprefix(prefix)
        try:
            values[float(v)] = k
        except ValueError:  # e.g. eval_hold_scale4_ens when asking for suffix ""
            continue
    return {v: _success([(r["seed"], r.get(k)) for r in rs]) for v, k in sorted(values.items())}


def aggregate(runs: list[dict]) -> list[dict]:
    groups = defaultdict(list)
    for r in runs:
        groups[(r["task"], r["policy"], r["n_demos"])].append(r)
    out = []
    for (task, policy, n), rs in sorted(groups.items(), key=lambda kv: (kv[0][0], kv[0][2], policy_rank(kv[0][1]))):
        rs = sorted(rs, key=lambda r: r["seed"])

        def col(*keys, rs=rs):
            return _agg([(r["seed"], get_in(r, *keys)) for r in rs])

        g = {
            "task": task, "policy": policy, "n_demos": n, "seeds": [r["seed"] for r in rs],
            "steps": rs[0]["steps"],
            "success": _success([(r["seed"], r.get("eval")) for r in rs]),
            "success_ensemble": _success([(r["seed"], r.get("eval_ensemble")) for r in rs]),
            "success_hold": _success([(r["seed"], r.get("eval_hold")) for r in rs]),
            "success_sample_z": _success([(r["seed"], r.get("eval_sample_z")) for r in rs]),
            # sampler-steps sweep (evaluated on the task's sweep seeds, not the headline ones)
            "success_steps": _sweep(rs, "eval_steps", ""),
            "success_hold_scale": _sweep(rs, "eval_hold_scale", ""),
            "success_hold_scale_ensemble": _sweep(rs, "eval_hold_scale", "_ens"),
            "chunk_mse": col("metrics", "fidelity", "chunk_mse"),
            "best_of_k_mse": col("metrics", "fidelity", "best_of_k_mse"),
            "mean_of_k_mse": col("metrics", "fidelity", "mean_of_k_mse"),
            "diversity": col("metrics", "fidelity", "diversity"),
            "k": get_in(rs[0], "metrics", "fidelity", "k"),
            "ms_per_chunk": col("metrics", "inference", "ms_per_chunk"),
            "s_per_step": col("train", "wall_s_per_step"),
            "updt_s": col("train", "updt_s_mean"),
            "kl": col("metrics", "latent", "kl", "kl"),
            "active_dims": col("metrics", "latent", "kl", "active_dims"),
            "latent_dim": get_in(rs[0], "metrics", "latent", "kl", "latent_dim"),
            "z_from_z": col("metrics", "latent", "z_usage", "from_z", "mean"),
            "z_from_noise": col("metrics", "latent", "z_usage", "from_noise", "mean"),
            "smooth": {}, "rollouts": {},
        }
        for mode, key in (("queue", "rollouts"), ("ensemble", "rollouts_ensemble")):
            if get_in(rs[0], "metrics", key) is None:
                continue
            g["smooth"][mode] = {m: col("metrics", key, "smoothness", m)
                                 for m in ("mean_step", "jerk_rms", "boundary_jump", "boundary_ratio")}
            g["rollouts"][mode] = {
                "success_rate": col("metrics", key, "summary", "success_rate"),
                "collision_rate": col("metrics", key, "summary", "collision_rate"),
                "mode_averaging_rate": col("metrics", key, "summary", "mode_averaging_rate"),
                "route_switch_rate": col("metrics", key, "summary", "route_switch_rate"),
                "max_reward_mean": col("metrics", key, "summary", "max_reward_mean"),
                "n_per_seed": get_in(rs[0], "metrics", key, "summary", "n"),
            }
        if task == "docking":
            g["routes"] = {
                "coverage": col("metrics", "routes", "coverage"),
                "entropy": col("metrics", "routes", "entropy"),
                "same_route_free": col("metrics", "routes", "same_route_free"),
                "same_route_held_z": col("metrics", "routes", "same_route_held_z"),
                "follows_posterior_z": col("metrics", "routes", "follows_posterior_z"),
                "R": get_in(rs[0], "metrics", "routes", "R"),
            }
            g["route_starts"] = [p["start_seed"] for p in (get_in(rs[0], "metrics", "routes", "per_start") or [])]
            acc = get_in(rs[0], "metrics", "latent", "route_accuracy") or {}
            g["route_accuracy"] = {
                key: {off: col("metrics", "latent", "route_accuracy", key, off) for off in offs}
                for key, offs in acc.items()
            }
        out.append(g)
    return out


def _starts(groups) -> list:
    return sorted({s for g in groups for s in (g.get("route_starts") or [])})


def _f(x, d=3, pct=False):
    if x is None:
        return "–"
    if isinstance(x, dict):
        if x.get("mean") is None:
            return "–"
        m, ci = x["mean"] + 0.0, x.get("ci")  # + 0.0: no "-0.00"
        if pct:
            return f"{100 * m:.0f}%"
        s = f"{m:.{d}f}"
        if ci and ci[0] is not None and x.get("n", 1) > 1:
            s += f" [{ci[0]:.{d}f}, {ci[1]:.{d}f}]"
        return s
    return f"{x + 0.0:.{d}f}"


def _succ(s):
    if not s:
        return "–"
    lo, hi = s["wilson95"]
    cell = f"{100 * s['rate']:.0f}% ({s['k']}/{s['n']}; {100 * lo:.0f}–{100 * hi:.0f})"
    if len(s.get("per_seed") or []) > 1:  # the pooled interval hides the spread between training seeds
        cell += "; per seed " + "/".join(f"{100 * r:.0f}" for r in s["per_seed"]) + "%"
    return cell


def tables(groups: list[dict], profile) -> str:
    lines = []
    for task in sorted({g["task"] for g in groups}):
        main_n = profile.main_n_demos.get(task)
        tg = [g for g in groups if g["task"] == task and g["n_demos"] == main_n]
        if not tg:
            continue
        lines += [f"### {task} ({main_n} demos, {tg[0]['steps']} steps, seeds {sorted({s for g in tg for s in g['seeds']})})", ""]
        act_ms = next((g["ms_per_chunk"]["mean"] for g in tg if g["policy"] == "act" and g["ms_per_chunk"]), None)
        lines += ["| policy | success (k/n; 95% CI) | success w/ ensembling | success, z held | success, fresh z per chunk "
                  "| max reward | chunk MSE | best-of-K | mean-of-K | diversity | mean step | jerk RMS | boundary ratio | "
                  "KL (active/terms) | train s/step (wall; update) | ms/chunk (x act) |",
                  "|" + "---|" * 16]
        for g in tg:
            q = g["smooth"].get("queue", {})
            kl = "–" if g["kl"] is None else f"{_f(g['kl'], 2)} ({_f(g['active_dims'], 0)}/{g['latent_dim']})"
            ms = _f(g["ms_per_chunk"], 1)
            if act_ms and g["ms_per_chunk"] and g["ms_per_chunk"]["mean"] is not None:
                ms += f" ({g['ms_per_chunk']['mean'] / act_ms:.2f}x)"
            lines.append(
                f"| {g['policy']} | {_succ(g['success'])} | {_succ(g['success_ensemble'])} | "
                f"{_succ(g['success_hold'])} | {_succ(g['success_sample_z'])} | "
                f"{_f((g['success'] or {}).get('max_reward_mean'), 2)} | {_f(g['chunk_mse'])} | "
                f"{_f(g['best_of_k_mse'])} | {_f(g['mean_of_k_mse'])} | {_f(g['diversity'])} | "
                f"{_f(q.get('mean_step'))} | {_f(q.get('jerk_rms'))} | {_f(q.get('boundary_ratio'), 2)} | {kl} | "
                f"{_f(g['s_per_step'], 3)}; {_f(g['updt_s'], 3)} | {ms} |")
        lines += _sweep_table(tg, "success_steps", None, "Sampler steps (DDIM, `--policy.num_inference_steps`)",
                              "{:g} steps")
        lines += _sweep_table(tg, "success_hold_scale", "success_hold_scale_ensemble",
                              "Held z's scale (`--policy.hold_scale=s`), plain / temporal ensembling", "s = {:g}")
        lines.append("")
        if task == "docking":
            n_ro = tg[0]["rollouts"].get("queue", {}).get("n_per_seed")
            R = (tg[0].get("routes") or {}).get("R")
            lines += [f"In-process docking rollouts: success / collision / mode averaging over n={n_ro} episodes per "
                      f"seed (seeds 2000..; same policy and env as `lerobot-eval`, other layouts, far fewer "
                      f"episodes); routes over R={R} rollouts from each of {len(_starts(tg))} start(s); "
                      "held z: pairs of rollouts sharing one z.", "",
                      "| policy | success | collision rate | mode averaging | route switches | route coverage | "
                      "route entropy (bits) | same route, fresh z | same route, held z | follows posterior z | "
                      "route from latent (frame 0) |", "|" + "---|" * 11]
            for g in tg:
                ro = g["rollouts"].get("queue", {})
                rt = g.get("routes", {})
                acc = ", ".join(f"{k}: {_f(v.get('0'), 2)}" for k, v in g.get("route_accuracy", {}).items()) or "–"
                lines.append(
                    f"| {g['policy']} | {_f(ro.get('success_rate'), 2)} | {_f(ro.get('collision_rate'), 2)} | "
                    f"{_f(ro.get('mode_averaging_rate'), 2)} | {_f(ro.get('route_switch_rate'), 2)} | "
                    f"{_f(rt.get('coverage'), 2)} | {_f(rt.get('entropy'), 2)} | {_f(rt.get('same_route_free'), 2)} | "
                    f"{_f(rt.get('same_route_held_z'), 2)} | {_f(rt.get('follows_posterior_z'), 2)} | {acc} |")
            lines.append("")
        se = [g for g in groups if g["task"] == task]
        ns = sorted({g["n_demos"] for g in se})
        if len(ns) > 1:
            lines += [f"Sample efficiency ({task}): success vs number of demos", "",
                      "| policy | " + " | ".join(f"{n} demos" for n in ns) + " |", "|---|" + "---|" * len(ns)]
            for p in sorted({g["policy"] for g in se}, key=policy_rank):
                cells = []
                for n in ns:
                    m = [g for g in se if g["policy"] == p and g["n_demos"] == n]
                    cells.append(_succ(m[0]["success"]) if m else "–")
                lines.append(f"| {p} | " + " | ".join(cells) + " |")
            lines.append("")
    return "\n".join(lines)


def _sweep_table(groups: list[dict], key: str, key_ensemble: str | None, caption: str, header: str) -> list[str]:
    """Markdown lines of a setting swept on the sweep episodes (``key``: value -> success; with ``key_ensemble``
    every cell is "plain / ensembled")."""
    swept = [g for g in groups if g[key]]
    if not swept:
        return []
    values = sorted({v for g in swept for v in g[key]})
    lines = ["", f"{caption}, evaluated on the sweep episodes (seeds 3000..), disjoint from the table above:", "",
             "| policy | " + " | ".join(header.format(v) for v in values) + " |", "|---|" + "---|" * len(values)]
    for g in swept:
        cells = [_succ(g[key].get(v)) + (f" / {_succ(g[key_ensemble].get(v))}" if key_ensemble else "") for v in values]
        lines.append(f"| {g['policy']} | " + " | ".join(cells) + " |")
    return lines


def z_usage_table(groups: list[dict]) -> str:
    """hybrid_act_c (and its variants) per (task, demos): how much of the chunk's spread comes from z and how much
    from the noise."""
    have = [g for g in groups if g["z_from_z"] is not None]
    if not have:
        return ""
    lines = ["Does `hybrid_act_c`'s denoiser use z? Chunk diversity (held-out frames, K samples) from K prior "
             "draws of z with one shared diffusion noise vs from one z with K noises:", "",
             "| task | demos | policy | seeds | from z | from noise | KL (nats) |", "|---|---|---|---|---|---|---|"]
    for g in have:
        lines.append(f"| {g['task']} | {g['n_demos']} | {g['policy']} | {', '.join(str(s) for s in g['seeds'])} | "
                     f"{_f(g['z_from_z'])} | {_f(g['z_from_noise'])} | {_f(g['kl'], 2)} |")
    return "\n".join(lines) + "\n"


def coverage_table(profile, present: list[str]) -> str:
    """Which planned runs exist: one row per (task, demos), one cell per policy listing the seeds finished."""
    have = set(present)
    rows, cells = [], defaultdict(list)
    for r in profile.runs():
        key = (r["task"], r["n_demos"])
        if key not in rows:
            rows.append(key)
        cells[key, r["policy"]].append(f"s{r['seed']}" if r["name"] in have else "·")
    pols = [p for p in POLICY_ORDER if any((k, p) in cells for k in rows)]
    lines = ["| task | demos | " + " | ".join(pols) + " |", "|---|---|" + "---|" * len(pols)]
    for task, n in rows:
        lines.append(f"| {task} | {n} | " + " | ".join(" ".join(cells.get(((task, n), p), ["n/a"])) for p in pols)
                     + " |")
    return "Finished runs (seed sN finished, · planned and not yet run):\n\n" + "\n".join(lines)


def run_hardware(runs: list[dict]) -> list[dict]:
    """The machines the runs trained on, as their run files record them (a report may be written elsewhere);
    this machine's when there are no runs."""
    from .runner import hardware

    seen = []
    for r in runs:
        if r.get("hardware") and r["hardware"] not in seen:
            seen.append(r["hardware"])
    return seen or [hardware()]


# --------------------------------------------------------------------------------------------- writer
def run_wall_s(r: dict) -> float:
    """A run's wall time; a run re-evaluated without retraining adds its training's, so the sum stays the cost."""
    training = (r.get("train") or {}).get("wall_s") or 0 if r.get("reevaluated_at_inference_defaults") else 0
    return r.get("run_wall_s", 0) + training


def write_report(out, profile, command: str = "") -> list[Path]:
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    runs, superseded = _current_runs(_load_runs(out), profile)
    reevaluated = [r["name"] for r in runs if r.get("reevaluated_at_inference_defaults")]
    planned = [r["name"] for r in profile.runs()]
    present = [r["name"] for r in runs]
    groups = aggregate(runs)
    hws = run_hardware(runs)
    n_on = [sum(r.get("hardware") == hw for r in runs) for hw in hws]
    label = f"profile '{profile.name}'" + (" (QUICK: 1 seed, short training; not the final answer)"
                                          if profile.name == "quick" else "")
    res = {
        "profile": profile.name, "label": label, "description": profile.description,
        "command": command, "hardware": hws, "generated": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        "runs_planned": planned, "runs_present": present,
        "runs_missing": [n for n in planned if n not in present],
        "metric_definitions": METRIC_DEFS, "groups": groups,
        "late_checkpoints": {r["name"]: r["late_checkpoints"] for r in runs if r.get("late_checkpoints")},
    }
    paths = [out / "results.json"]
    paths[0].write_text(json.dumps(res, indent=1))
    table = tables(groups, profile) if groups else "_no finished runs yet_"
    for extra in (z_usage_table(groups), stability_table(runs), superseded_table(out, profile)):
        if extra:
            table += "\n" + extra
    head = (f"Profile **{profile.name}** — {profile.description}.\n\n"
            f"Command: `{command}`. Hardware: "
            + "; ".join(f"{hw['nproc']} CPU cores ({hw['cpu_model']}), torch {hw['torch']}, GPU: {hw['gpu']}"
                        + (f" ({n} run{'s' * (n != 1)})" if len(hws) > 1 else "")
                        for hw, n in zip(hws, n_on))
            + ", 1 intra-op thread per process. "
            f"Sum of run wall times: {sum(run_wall_s(r) for r in runs) / 60:.0f} min "
            f"(datasets recorded once, not included; one process per run with one intra-op thread, at most one "
            f"run per core; the machine was shared with other jobs). "
            f"Runs finished: {len(present)}/{len(planned)}"
            + (" (which ones: the table below)." if res["runs_missing"] else ".")
            + (f" Not counted: {len(superseded)} run file(s) trained with earlier settings of this profile "
               f"({', '.join(superseded)}); they are retrained on the next invocation." if superseded else "")
            + (f" Re-evaluated at today's inference defaults without retraining (their checkpoints predate a default "
               f"read only at inference): {', '.join(reevaluated)}." if reevaluated else "")
            + "\n")
    if res["runs_missing"]:
        head += "\n" + coverage_table(profile, present) + "\n"
    if groups:
        try:
            pngs = plots(out, groups, runs, label, profile.main_n_demos)
        except Exception as e:  # plots must not lose the tables
            pngs = []
            print(f"report: plotting failed: {e!r}")
        paths += pngs
    else:
        pngs = []
    page = [
        f"# Ablation results — {label}", "",
        f"_Generated by `{command}` on {res['generated']} from `runs/*.json`; do not edit by hand._", "",
        head, table, "",
        "\n".join(f"![{p.stem}]({p.name})" for p in pngs), "",
        "Protocol: every policy trains through `lerobot-train` on the same recorded demos with the same steps and "
        "batch size and is evaluated by `lerobot-eval` on seeds 1000.. (demos use seeds < 500, held-out demos "
        "500.., route starts 900.., in-process rollouts 2000..); LeRobot act/diffusion keep their defaults except "
        "the shared sizes (diffusion: U-Net down_dims shrunk for CPU, DDIM with 10 steps like ours) and "
        "`observation.environment_state`, which they normalize like their state (their default mappings leave it "
        "raw; ours standardize it). "
        "No hyper-parameter was chosen from evaluation results.", "",
        "## Metric definitions", "",
        "Code: `lerobot_hybrid_act/ablation/metrics.py`, `probes.py` and `report.py`.", "",
        *(f"- **{k}**: {v}" for k, v in METRIC_DEFS.items()),
    ]
    (out / "README.md").write_text("\n".join(page) + "\n")
    paths.append(out / "README.md")
    return paths
