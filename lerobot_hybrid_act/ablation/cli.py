"""``hybrid-act-ablation``: run an ablation profile and write its report.

    hybrid-act-ablation --profile quick --out results/quick          # <= 30 min on 2 CPU cores
    nohup hybrid-act-ablation --profile full --out results/full > full.log 2>&1 &   # hours; resumable
    hybrid-act-ablation --profile full --out results/full --report-only   # re-aggregate into results/full/README.md

A run uses one core. ``--jobs N`` runs N at a time (each in its own process, handed out in profile order);
``--only`` restricts a profile to some runs (exact run names, or parts of names such as ``docking__``):

    nohup hybrid-act-ablation --profile full --out results/full --jobs 2 > full.log 2>&1 &
"""

from __future__ import annotations

import argparse
import importlib.util
import shlex
import sys
import time
from pathlib import Path

from .profiles import PROFILES, get_profile


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    p = argparse.ArgumentParser(prog="hybrid-act-ablation", description=__doc__.split("\n")[0])
    p.add_argument("--profile", required=True, choices=sorted(PROFILES))
    p.add_argument("--out", default=None, help="results directory (default results/<profile>)")
    p.add_argument("--work", default=None, help="datasets/checkpoints (default outputs/ablation/<profile>)")
    p.add_argument("--only", nargs="*", default=None, help="only these runs: exact run names or parts of names")
    p.add_argument("--jobs", type=int, default=1, help="runs at a time, one process and one core each")
    p.add_argument("--report-only", action="store_true", help="only aggregate existing run files")
    p.add_argument("--no-report", action="store_true", help=argparse.SUPPRESS)  # workers of --jobs
    p.add_argument("--force", action="store_true", help="run a profile marked not runnable here (gpu)")
    a = p.parse_args(argv)
    if a.jobs < 1:
        p.error(f"--jobs must be >= 1, got {a.jobs}")
    if importlib.util.find_spec("matplotlib") is None:  # checked first: the report's plots come after hours of runs
        p.error('the ablation report draws plots with matplotlib, which the plugin alone does not install: '
                'pip install "lerobot_policy_hybrid_act[ablation]"')
    prof = get_profile(a.profile)
    if a.only:
        from .runner import select_runs

        if not select_runs(prof, a.only):
            p.error(f"--only {' '.join(a.only)} matches no run of profile {prof.name!r}; run names look like "
                    f"{prof.runs()[0]['name']} (task__policy__n<demos>__s<seed>)")
    out = Path(a.out or f"results/{prof.name}")
    work = Path(a.work or f"outputs/ablation/{prof.name}")
    # The runs depend only on the profile (``--only`` splits them between workers, ``--report-only`` re-reads
    # them), so the report names the one command that reproduces every run.
    command = f"hybrid-act-ablation --profile {prof.name} --out {shlex.quote(str(out))}"
    t0 = time.perf_counter()
    if not a.report_only:
        if not prof.runnable and not a.force:
            print(f"profile {prof.name!r} is configured for a GPU machine ({prof.description}); "
                  "pass --force to run it anyway", file=sys.stderr)
            return 2
        from .runner import run_parallel, run_profile

        try:
            if a.jobs > 1:
                run_parallel(prof, out, work, only=a.only, jobs=a.jobs, log=lambda m: print(m, flush=True))
            else:
                run_profile(prof, out, work, only=a.only, log=lambda m: print(m, flush=True))
        except Exception as e:  # keep what finished; report it, then fail
            print(f"hybrid-act-ablation: a run failed: {e}", file=sys.stderr)
            if not a.no_report:
                from .report import write_report

                write_report(out, prof, command=command)
            return 1
    if a.no_report:
        return 0
    from .report import write_report

    paths = write_report(out, prof, command=command)
    print(f"report: {', '.join(str(x) for x in paths)} ({time.perf_counter() - t0:.0f}s)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
