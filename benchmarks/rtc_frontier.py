"""Success against chunk-boundary smoothness at one inference delay, from ``rtc_delay.py`` result files.

    python benchmarks/rtc_frontier.py benchmarks/results/rtc_delay_design500_q*_eh*.json --delay 4 \\
        --out benchmarks/results/rtc_frontier_design500.png

One point per (scheme, chunk period, RTC setting) pooled over a file's checkpoints: x = the chunk-boundary jump ratio,
y = success with its 95% Wilson interval. Plain chunking and RTC at the same chunk period are joined by a line, so
each line shows what RTC's blend buys in smoothness and what it costs in success at that schedule. Files must share
their checkpoints and episode seeds (else the points are not comparable); a plain row repeated across files (it does
not depend on RTC's settings) is drawn once. Prints the points as a table.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path


def points(paths: list[Path], delay: int) -> list[dict]:
    """The pooled rows at ``delay`` of every file, labelled with their RTC setting; refuses files that differ in
    checkpoints or episode seeds."""
    found, seen, runs = [], set(), set()
    keys = {"checkpoints", "episode_seeds", "execution_horizon", "prefix_attention_schedule", "pooled"}
    for path in paths:
        result = json.loads(path.read_text())
        if not isinstance(result, dict) or keys - set(result):
            sys.exit(f"{path} is not a benchmarks/rtc_delay.py result (it needs {', '.join(sorted(keys))}); pass the "
                     "JSON files that rtc_delay.py --out wrote.")
        runs.add((tuple(result["checkpoints"]), tuple(result["episode_seeds"])))
        if len(runs) > 1:
            sys.exit(f"{path}: other checkpoints or episode seeds than the files before it ({sorted(runs)}); "
                     "pass files of one run of checkpoints and seeds.")
        schedule = result["prefix_attention_schedule"]
        setting = f"H{result['execution_horizon']}" + ("" if schedule == "LINEAR" else f" {schedule}")
        for row in result["pooled"]:
            if row["delay"] != delay or row["scheme"] == "ensemble":
                continue
            key = (row["scheme"], row["chunk_period"], setting if row["scheme"] == "rtc" else "")
            if key not in seen:
                seen.add(key)
                found.append({"scheme": row["scheme"], "period": row["chunk_period"], "setting": key[2],
                              "success": row["successes"], "episodes": row["episodes"], "rate": row["success_rate"],
                              "ci": row["success_ci95"], "ratio": row["boundary_ratio"]["mean"]})  # fmt: skip
    if not found:
        sys.exit(f"no plain or rtc rows at delay {delay} in {', '.join(map(str, paths))}")
    return sorted(found, key=lambda p: (p["period"], p["scheme"], p["setting"]))


def plot(found: list[dict], delay: int, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(7, 4.5))
    periods = sorted({p["period"] for p in found})
    colors = dict(zip(periods, plt.cm.viridis([i / max(len(periods) - 1, 1) for i in range(len(periods))])))
    for period in periods:
        mine = [p for p in found if p["period"] == period]
        plain = [p for p in mine if p["scheme"] == "plain"]
        for p in mine:
            lo, hi = p["ci"]
            ax.errorbar(p["ratio"], p["rate"], yerr=[[p["rate"] - lo], [hi - p["rate"]]], color=colors[period],
                        marker="o" if p["scheme"] == "plain" else "s", capsize=2, ms=5)  # fmt: skip
            if p["scheme"] == "rtc":
                ax.annotate(p["setting"], (p["ratio"], p["rate"]), fontsize=7, xytext=(3, 3), textcoords="offset points")
                if plain:
                    ax.plot([plain[0]["ratio"], p["ratio"]], [plain[0]["rate"], p["rate"]], color=colors[period], lw=0.8)
        ax.plot([], [], color=colors[period], label=f"a chunk every {period} steps")
    ax.axvline(1.2, color="grey", ls="--", lw=0.8)
    ax.plot([], [], "ko", label="plain chunking")
    ax.plot([], [], "ks", label="RTC (execution horizon H, LINEAR unless named)")
    ax.set(xlabel="chunk-boundary jump ratio (1 = a boundary like any step)", ylabel="success (95% Wilson)",
           title=f"docking at an inference delay of {delay} steps")  # fmt: skip
    ax.legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("results", nargs="+", type=Path, help="rtc_delay.py result files (.json)")
    ap.add_argument("--delay", type=int, default=4, help="the inference delay to compare at (control steps)")
    ap.add_argument("--out", type=Path, required=True, help="the plot (.png)")
    a = ap.parse_args(argv)
    found = points(a.results, a.delay)
    print("| scheme | chunk every | RTC setting | success | boundary jump ratio |\n|---|---:|---|---|---:|")
    for p in found:
        print(f"| {p['scheme']} | {p['period']} | {p['setting'] or '-'} | {p['success']}/{p['episodes']} = "
              f"{p['rate']:.3f} | {p['ratio']:.2f} |")
    plot(found, a.delay, a.out)
    print(f"\nwrote {a.out}")


if __name__ == "__main__":
    main()
