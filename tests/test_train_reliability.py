"""Reliability through LeRobot's real training entry point (subprocesses): resume after a crash, checkpoints
that stay loadable when a save is killed, and multi-process (DDP, gloo on CPU) training that keeps ranks in sync.

All runs go through WRAPPER: `lerobot-train` itself (``lerobot.scripts.lerobot_train.main``) plus test hooks
switched on by environment variables (simulate a crash while saving, dump every rank's parameters).
"""

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from conftest import TINY
from lerobot.policies.factory import get_policy_class, make_pre_post_processors
from safetensors.torch import load_file

pytestmark = pytest.mark.slow

BIN = Path(sys.executable).parent
ENV = {**os.environ, "HF_HUB_OFFLINE": "1", "WANDB_MODE": "disabled", "OMP_NUM_THREADS": "1"}
STEPS, SAVE_FREQ = 6, 3

WRAPPER = """# lerobot-train with test hooks, switched on by environment variables.
import os
import sys
from pathlib import Path

import torch

import lerobot.scripts.lerobot_train as lt

if os.environ.get("HAC_RNG_NEUTRAL_DATALOADER"):
    # torch's DataLoader draws its base/shared seeds from the global RNG whenever an iterator is created: on
    # resume that happens right after LeRobot restored the checkpoint's RNG state, shifting the diffusion
    # noise stream by two draws. Creating iterators without touching the global RNG removes that one difference.
    from torch.utils.data import dataloader as _tdl

    _init = _tdl._BaseDataLoaderIter.__init__

    def _rng_neutral_init(self, loader):
        state = torch.get_rng_state()
        _init(self, loader)
        torch.set_rng_state(state)

    _tdl._BaseDataLoaderIter.__init__ = _rng_neutral_init

if os.environ.get("HAC_CRASH_SAVING_STEP"):
    # Simulate `kill -9` while the checkpoint of that step is being written: model.safetensors half written,
    # nothing else (processors, train_config, training_state) yet, and `last` not yet updated.
    crash_step = int(os.environ["HAC_CRASH_SAVING_STEP"])
    _save = lt.save_checkpoint

    def _crashing_save(checkpoint_dir, step, cfg, policy, *args, **kwargs):
        if step != crash_step:
            return _save(checkpoint_dir, step, cfg, policy, *args, **kwargs)
        weights = Path(checkpoint_dir) / "pretrained_model" / "model.safetensors"
        policy.save_pretrained(weights.parent)
        weights.write_bytes(weights.read_bytes()[: weights.stat().st_size // 2])
        os._exit(137)

    lt.save_checkpoint = _crashing_save

if os.environ.get("HAC_DUMP_PARAMS_DIR"):
    # After training, every rank writes the parameters and buffers it holds (to compare ranks).
    _update = lt.update_policy
    _trained = {}

    def _recording_update(train_metrics, policy, *args, **kwargs):
        _trained["policy"] = policy
        return _update(train_metrics, policy, *args, **kwargs)

    lt.update_policy = _recording_update

sys.argv = ["lerobot-train", *sys.argv[1:]]
lt.main()

if os.environ.get("HAC_DUMP_PARAMS_DIR"):
    policy = _trained["policy"]
    policy = getattr(policy, "module", policy)  # DDP wrapper -> policy
    state = {k: v.detach().cpu().clone() for k, v in policy.state_dict().items()}
    torch.save(state, Path(os.environ["HAC_DUMP_PARAMS_DIR"]) / f"rank{os.environ.get('RANK', '0')}.pt")
"""


def run(cmd: list[str], env: dict, expect_rc: int = 0, timeout: int = 600) -> subprocess.CompletedProcess:
    out = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=timeout)
    assert out.returncode == expect_rc, f"{' '.join(cmd)}\n--- stdout\n{out.stdout[-3000:]}\n--- stderr\n{out.stderr[-5000:]}"
    return out


@pytest.fixture(scope="module")
def dataset(tmp_path_factory) -> Path:
    """3 scripted docking episodes, state-only (265 frames): enough for a few steps, fast to load."""
    root = tmp_path_factory.mktemp("data") / "docking_state"
    run([str(BIN / "hybrid-act-record"), "--task", "docking", "--episodes", "3", "--repo-id", "local/docking_state",
         "--root", str(root), "--cameras", "none", "--seed", "0"], ENV)  # fmt: skip
    return root


@pytest.fixture(scope="module")
def wrapper(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("wrapper") / "lerobot_train_hooks.py"
    path.write_text(WRAPPER)
    return path


def train_args(dataset: Path, out: Path, steps: int = STEPS, save_freq: int = SAVE_FREQ) -> list[str]:
    tiny = [f"--policy.{k}={'null' if v is None else v}" for k, v in TINY.items()]
    return ["--policy.type=hybrid_act_c", "--dataset.repo_id=local/docking_state", f"--dataset.root={dataset}",
            "--policy.device=cpu", "--policy.push_to_hub=false", *tiny, "--policy.kl_anneal_steps=10",
            f"--steps={steps}", f"--save_freq={save_freq}", "--batch_size=4", "--num_workers=0", "--log_freq=1",
            "--seed=3", "--wandb.enable=false", f"--output_dir={out}"]  # fmt: skip


def load_checkpoint(step_dir: Path) -> dict:
    state = load_file(step_dir / "pretrained_model" / "model.safetensors")
    optim = load_file(step_dir / "training_state" / "optimizer_state.safetensors")
    step = json.loads((step_dir / "training_state" / "training_step.json").read_text())["step"]
    return {"model": state, "optim": optim, "step": step}


def assert_loadable(pretrained: Path) -> None:
    policy = get_policy_class("hybrid_act_c").from_pretrained(pretrained)
    make_pre_post_processors(policy.config, pretrained_path=str(pretrained))


def test_crash_while_saving_keeps_last_loadable_and_resume_matches_uninterrupted(dataset, wrapper, tmp_path):
    hooks = {**ENV, "HAC_RNG_NEUTRAL_DATALOADER": "1"}
    full, crashed = tmp_path / "full", tmp_path / "crashed"
    run([sys.executable, str(wrapper), *train_args(dataset, full)], hooks)

    # Killed while writing the step-6 checkpoint (after the step-3 one completed).
    run([sys.executable, str(wrapper), *train_args(dataset, crashed)], {**hooks, "HAC_CRASH_SAVING_STEP": "6"}, expect_rc=137)
    ckpts = crashed / "checkpoints"
    assert os.readlink(ckpts / "last") == "000003"  # LeRobot moves `last` only after a complete save
    assert_loadable(ckpts / "last" / "pretrained_model")
    with pytest.raises(ValueError, match="truncated or corrupt"):  # the half-written one fails clearly
        get_policy_class("hybrid_act_c").from_pretrained(ckpts / "000006" / "pretrained_model")

    # Resume from `last`, as a user would, in two copies of the crashed run: with LeRobot as is, and with the
    # DataLoader iterator made RNG-neutral (see WRAPPER).
    plain = tmp_path / "resumed_plain"
    shutil.copytree(crashed, plain, symlinks=True)
    for out, cmd, env in ((crashed, [sys.executable, str(wrapper)], hooks), (plain, [str(BIN / "lerobot-train")], ENV)):
        config = out / "checkpoints" / "last" / "pretrained_model" / "train_config.json"
        run([*cmd, "--resume=true", f"--config_path={config}", f"--output_dir={out}"], env)
        assert os.readlink(out / "checkpoints" / "last") == "000006"
        assert_loadable(out / "checkpoints" / "last" / "pretrained_model")

    ref, exact, lerobot = (load_checkpoint(d / "checkpoints" / "000006") for d in (full, crashed, plain))
    for resumed in (exact, lerobot):
        # Same step count, KL-annealing position and optimizer state step as the uninterrupted run.
        assert resumed["step"] == ref["step"] == STEPS
        assert int(resumed["model"]["model.kl_step"]) == int(ref["model"]["model.kl_step"]) == STEPS
        assert resumed["optim"].keys() == ref["optim"].keys()
        steps = [k for k in ref["optim"] if k.endswith("/step")]
        assert steps and all(torch.equal(resumed["optim"][k], ref["optim"][k]) for k in steps)
    # Up to the RNG draws of the DataLoader iterator (data order is sample-exact in LeRobot), the resumed run
    # IS the uninterrupted one: weights and Adam moments bit-identical.
    assert all(torch.equal(exact["model"][k], ref["model"][k]) for k in ref["model"])
    assert all(torch.equal(exact["optim"][k], ref["optim"][k]) for k in ref["optim"])
    # With LeRobot as is, the diffusion noise after the resume point differs, so weights differ slightly.
    assert all(torch.allclose(lerobot["model"][k].float(), ref["model"][k].float(), atol=1e-2) for k in ref["model"])


def test_accelerate_two_processes_keep_ranks_in_sync(dataset, wrapper, tmp_path):
    """`accelerate launch --multi_gpu --num_processes 2` on a CPU machine: torchrun starts 2 ranks and
    `--policy.device=cpu` makes LeRobot's Accelerator use DDP over gloo. (`accelerate launch --cpu
    --num_processes 2` would start ONE process: accelerate's multi-CPU mode needs mpirun.)"""
    out, dumps = tmp_path / "ddp", tmp_path / "dumps"
    dumps.mkdir()
    accelerate = [str(BIN / "accelerate"), "launch", "--multi_gpu", "--num_processes", "2", "--num_machines", "1",
                  "--mixed_precision", "no", "--dynamo_backend", "no", "--main_process_port", "0"]  # fmt: skip
    run([*accelerate, str(wrapper), *train_args(dataset, out, steps=3, save_freq=3)], {**ENV, "HAC_DUMP_PARAMS_DIR": str(dumps)})

    ckpt = out / "checkpoints" / "last"
    state = json.loads((ckpt / "training_state" / "training_step.json").read_text())
    assert state == {"step": 3, "num_processes": 2, "batch_size": 4}
    ranks = [torch.load(dumps / f"rank{r}.pt") for r in (0, 1)]
    saved = load_file(ckpt / "pretrained_model" / "model.safetensors")
    assert ranks[0].keys() == ranks[1].keys() == saved.keys()
    # Every parameter and buffer identical on both ranks and in the checkpoint; kl_step advanced once per step.
    for key in saved:
        assert torch.equal(ranks[0][key], ranks[1][key]), key
        assert torch.equal(ranks[0][key], saved[key]), key
    assert int(saved["model.kl_step"]) == 3
    assert_loadable(ckpt / "pretrained_model")
