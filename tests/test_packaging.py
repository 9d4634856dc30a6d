"""The installed plugin is lean: the policies, processors, envs and recorder never import matplotlib, which only
the ablation harness needs (``pip install "lerobot_policy_hybrid_act[ablation]"``)."""

import json
import os
import subprocess
import sys
import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

# What `pip install lerobot_policy_hybrid_act` gives a user: the module LeRobot imports, the policies (LeRobot
# imports modeling/processor by naming convention), the env types and the recorder.
PLUGIN_MODULES = (
    "lerobot_policy_hybrid_act",
    "lerobot_hybrid_act.modeling_hybrid_act",
    "lerobot_hybrid_act.processor_hybrid_act",
    "lerobot_hybrid_act.record",
)


def _imported_matplotlib(modules: tuple[str, ...]) -> list[str]:
    """matplotlib modules loaded after importing ``modules`` in a fresh interpreter (this checkout first)."""
    code = (
        "import importlib, json, sys\n"
        f"for name in {list(modules)!r}:\n"
        "    importlib.import_module(name)\n"
        "import lerobot_hybrid_act\n"
        f"assert lerobot_hybrid_act.__file__.startswith({str(ROOT)!r}), lerobot_hybrid_act.__file__\n"
        "print(json.dumps(sorted(m for m in sys.modules if m.split('.')[0] == 'matplotlib')))\n"
    )
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")]),
           "HF_HUB_OFFLINE": "1", "OMP_NUM_THREADS": "1"}
    p = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT, env=env, timeout=300)
    assert p.returncode == 0, p.stderr[-3000:]
    return json.loads(p.stdout.strip().splitlines()[-1])


def test_importing_the_plugin_does_not_import_matplotlib():
    assert _imported_matplotlib(PLUGIN_MODULES) == []


def test_the_import_check_sees_matplotlib_when_it_is_imported():
    # the control: the ablation report imports matplotlib only to plot; once something imports it, the check sees it
    assert "matplotlib" in _imported_matplotlib(("lerobot_hybrid_act.ablation.report", "matplotlib.pyplot"))


def test_matplotlib_is_an_extra_that_the_test_extra_includes():
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    extras = project["optional-dependencies"]
    assert not any(d.startswith("matplotlib") for d in project["dependencies"])
    assert any(d.startswith("matplotlib") for d in extras["ablation"])
    assert any(d.startswith(f"{project['name']}[") and "ablation" in d for d in extras["test"])  # setup_env.sh installs ".[test]"
