"""End to end through LeRobot's real entry points: hybrid-act-record -> lerobot-train -> lerobot-eval,
plus the Hub upload (at the huggingface_hub API boundary) and download (from a local HF cache, offline)."""

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import TINY, VARIANTS

pytestmark = pytest.mark.slow

BIN = Path(sys.executable).parent
IMAGE = 32
TRAIN_STEPS = 4
ENV = {**os.environ, "HF_HUB_OFFLINE": "1", "MUJOCO_GL": "egl", "WANDB_MODE": "disabled"}


def run(cmd: list[str], env: dict | None = None, timeout: int = 600) -> subprocess.CompletedProcess:
    out = subprocess.run(cmd, capture_output=True, text=True, env=env or ENV, timeout=timeout)
    assert out.returncode == 0, f"{' '.join(cmd)}\n--- stdout\n{out.stdout[-4000:]}\n--- stderr\n{out.stderr[-6000:]}"
    return out


def policy_overrides() -> list[str]:
    return [f"--policy.{k}={'null' if v is None else v}" for k, v in TINY.items()]


@pytest.fixture(scope="session")
def docking_dataset(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("data") / "docking_tiny"
    run([str(BIN / "hybrid-act-record"), "--task", "docking", "--episodes", "3", "--repo-id", "local/docking_tiny",
         "--root", str(root), "--image-size", f"{IMAGE}x{IMAGE}", "--cameras", "top", "--seed", "0"])  # fmt: skip
    return root


def train(variant: str, dataset: Path, out: Path, extra: list[str] = (), env: dict | None = None, prefix=()) -> Path:
    run([*prefix, str(BIN / "lerobot-train"), f"--policy.type={variant}", "--dataset.repo_id=local/docking_tiny",
         f"--dataset.root={dataset}", "--policy.device=cpu", "--policy.push_to_hub=false", *policy_overrides(),
         f"--steps={TRAIN_STEPS}", "--batch_size=4", f"--save_freq={TRAIN_STEPS}", "--log_freq=2", "--num_workers=0",
         f"--output_dir={out}", "--wandb.enable=false", *extra], env=env)  # fmt: skip
    return out / "checkpoints" / "last" / "pretrained_model"


def evaluate(policy_path: str, out: Path, env: dict | None = None) -> dict:
    run([str(BIN / "lerobot-eval"), f"--policy.path={policy_path}", "--env.type=docking", "--env.obs_type=pixels_state",
         f"--env.observation_height={IMAGE}", f"--env.observation_width={IMAGE}", "--env.episode_length=15",
         "--eval.n_episodes=1", "--eval.batch_size=1", "--policy.device=cpu", f"--output_dir={out}"], env=env)  # fmt: skip
    return json.loads((out / "eval_info.json").read_text())


@pytest.mark.parametrize("variant", VARIANTS)
def test_lerobot_train_then_eval(variant, docking_dataset, tmp_path):
    ema = variant == "hybrid_act_b"  # one variant trains with a weight average: lerobot-train must call update()
    ckpt = train(variant, docking_dataset, tmp_path / "train", extra=["--policy.ema_decay=0.5"] if ema else [])
    for name in ("config.json", "model.safetensors", "policy_preprocessor.json", "policy_postprocessor.json"):
        assert (ckpt / name).is_file(), name
    if ema:
        from safetensors.torch import load_file

        assert int(load_file(ckpt / "model.safetensors")["ema_updates"]) == TRAIN_STEPS
    assert json.loads((ckpt / "config.json").read_text())["type"] == variant
    info = evaluate(str(ckpt), tmp_path / "eval")
    overall = info["overall"]
    assert overall["n_episodes"] == 1
    assert 0.0 <= overall["pc_success"] <= 100.0
    if variant == "hybrid_act_c":  # the style-control example runs on a real checkpoint
        example = Path(__file__).parents[1] / "examples" / "style_control.py"
        out = run([sys.executable, str(example), "--policy-path", str(ckpt), "--dataset-root", str(docking_dataset),
                   "--repo-id", "local/docking_tiny", "--samples", "3"])  # fmt: skip
        assert "spread with fresh z" in out.stdout and out.stdout.count("first action") == 3
        # the route picture drives state-only policies (the quickstart's); a camera policy is refused by name
        out = subprocess.run([sys.executable, str(example.parent / "route_picture.py"), "--checkpoint", str(ckpt)],
                             capture_output=True, text=True, env={**os.environ, "HF_HUB_OFFLINE": "1"})  # fmt: skip
        assert out.returncode != 0 and "state-only" in out.stderr and "observation.images.top" in out.stderr


# Replaces the Hub's network calls (HfApi, card validation) with a copy into $CAPTURE_DIR/<repo_id>/, then runs lerobot-train.
PUSH_WRAPPER = """
import os, shutil, sys, types
from pathlib import Path
import huggingface_hub
capture = Path(os.environ["CAPTURE_DIR"])
def create_repo(self, repo_id, **kw):
    return types.SimpleNamespace(repo_id=repo_id)
def upload_folder(self, repo_id, folder_path, allow_patterns=None, ignore_patterns=None, **kw):
    dest = capture / repo_id
    dest.mkdir(parents=True, exist_ok=True)
    for f in Path(folder_path).rglob("*"):
        if f.is_file():
            shutil.copy(f, dest / f.name)
    return types.SimpleNamespace(repo_url=types.SimpleNamespace(url="https://hf.co/" + repo_id))
huggingface_hub.HfApi.create_repo = create_repo
huggingface_hub.HfApi.upload_folder = upload_folder
huggingface_hub.RepoCard.validate = lambda self, repo_type=None: None  # a Hub API call (validate-yaml)
from lerobot.scripts.lerobot_train import main
sys.argv = ["lerobot-train", *sys.argv[1:]]
main()
"""


def test_push_to_hub_then_eval_from_offline_hub_cache(docking_dataset, tmp_path):
    capture = tmp_path / "uploaded"
    wrapper = tmp_path / "train_with_fake_hub.py"
    wrapper.write_text(PUSH_WRAPPER)
    env = {**ENV, "CAPTURE_DIR": str(capture)}
    repo_id = "someone/hybrid_act_c_docking"
    run([sys.executable, str(wrapper), "--policy.type=hybrid_act_c", "--dataset.repo_id=local/docking_tiny",
         f"--dataset.root={docking_dataset}", "--policy.device=cpu", "--policy.push_to_hub=true",
         f"--policy.repo_id={repo_id}", *policy_overrides(), "--steps=2", "--batch_size=4", "--save_freq=2",
         "--num_workers=0", f"--output_dir={tmp_path / 'train'}", "--wandb.enable=false"], env=env)  # fmt: skip

    uploaded = capture / repo_id
    names = {p.name for p in uploaded.iterdir()}
    assert {"config.json", "model.safetensors", "README.md", "train_config.json",
            "policy_preprocessor.json", "policy_postprocessor.json"} <= names, names  # fmt: skip
    assert any(n.startswith("policy_preprocessor_") and n.endswith(".safetensors") for n in names), names
    card = (uploaded / "README.md").read_text()
    assert "hybrid_act_c" in card and "local/docking_tiny" in card
    assert "posterior q(z|a,obs) + learned conditional prior" in card

    # Lay the upload out as a Hub cache snapshot and evaluate `--policy.path=<repo id>` fully offline.
    cache = tmp_path / "hf_cache"
    repo_dir = cache / f"models--{repo_id.replace('/', '--')}"
    commit = "0" * 40
    shutil.copytree(uploaded, repo_dir / "snapshots" / commit)
    (repo_dir / "refs").mkdir(parents=True)
    (repo_dir / "refs" / "main").write_text(commit)
    info = evaluate(repo_id, tmp_path / "eval", env={**ENV, "HF_HUB_CACHE": str(cache)})
    assert info["overall"]["n_episodes"] == 1
