"""The ablation harness (issue 7): ``hybrid-act-ablation --profile quick|full|smoke --out results/<profile>``.

- ``profiles``: declarative profiles (tasks, policies, shared sizes, steps, seeds, episode counts);
- ``runner``: records datasets once per (task, n_demos) + a held-out demo set, then for every run
  (task, policy, n_demos, train seed) ``lerobot-train`` -> ``lerobot-eval`` (with and without temporal
  ensembling) -> in-process extra metrics; one JSON per finished run (resumable);
- ``metrics``: metric definitions (pure functions) and the in-process evaluation of a checkpoint;
- ``report``: ``<out>/results.json``, PNG plots and ``<out>/README.md`` from the run files;
- ``cli``: the console script.
"""
