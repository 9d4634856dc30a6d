"""`lerobot-eval` of LeRobot's `act` and our `hybrid_act_a` on `--env.type=aloha_fast` (subprocess, like a user would)."""

import os

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("MUJOCO_GL", "egl")

import json  # noqa: E402
import shutil  # noqa: E402
import subprocess  # noqa: E402
import sys  # noqa: E402
from pathlib import Path  # noqa: E402

import pytest  # noqa: E402
import torch  # noqa: E402
from conftest import TINY as CORE_TINY  # noqa: E402

IMG_H, IMG_W = 32, 48


# The core tests' tiny architecture (+ ACT's use_vae); only the fields a policy's config has are passed.
TINY = {**CORE_TINY, "chunk_size": 10, "n_action_steps": 10, "latent_dim": 8, "use_vae": False}


def make_tiny_checkpoint(policy_type: str, path: Path, env_state_dim: int = 7) -> Path:
    """Untrained, tiny policy of `policy_type` with its saved pre/post processors (what lerobot-eval loads)."""
    import dataclasses

    import lerobot_hybrid_act  # noqa: F401  (registers hybrid_act_*)
    from lerobot.configs import FeatureType, PolicyFeature, PreTrainedConfig
    from lerobot.policies.factory import get_policy_class, make_pre_post_processors

    inputs = {
        "observation.state": PolicyFeature(FeatureType.STATE, (14,)),
        "observation.environment_state": PolicyFeature(FeatureType.ENV, (env_state_dim,)),
        "observation.images.top": PolicyFeature(FeatureType.VISUAL, (3, IMG_H, IMG_W)),
    }
    cfg_cls = PreTrainedConfig.get_choice_class(policy_type)
    names = {f.name for f in dataclasses.fields(cfg_cls)}
    cfg = cfg_cls(
        input_features=inputs,
        output_features={"action": PolicyFeature(FeatureType.ACTION, (14,))},
        device="cpu",
        **{k: v for k, v in TINY.items() if k in names},
    )
    torch.manual_seed(0)
    policy = get_policy_class(policy_type)(cfg)

    def stats(shape, mean=0.0, std=1.0):
        return {"mean": torch.full(shape, mean), "std": torch.full(shape, std),
                "min": torch.full(shape, mean - 1), "max": torch.full(shape, mean + 1)}

    dataset_stats = {
        "observation.state": stats((14,)),
        "observation.environment_state": stats((env_state_dim,)),
        "action": stats((14,)),
        "observation.images.top": stats((3, 1, 1), 0.5, 0.25),
    }
    pre, post = make_pre_post_processors(cfg, dataset_stats=dataset_stats)
    policy.save_pretrained(path)
    pre.save_pretrained(path)
    post.save_pretrained(path)
    return path


def lerobot_eval_cmd() -> list[str]:
    exe = shutil.which("lerobot-eval", path=str(Path(sys.executable).parent)) or shutil.which("lerobot-eval")
    assert exe, "lerobot-eval console script not found"
    return [exe]


@pytest.mark.slow
@pytest.mark.parametrize("policy_type", ["act", "hybrid_act_a"])
def test_lerobot_eval_on_aloha_fast(policy_type, tmp_path):
    ckpt = make_tiny_checkpoint(policy_type, tmp_path / policy_type)
    out = tmp_path / "eval"
    steps = 20
    cmd = lerobot_eval_cmd() + [
        f"--policy.path={ckpt}",
        "--policy.device=cpu",
        "--env.type=aloha_fast",
        "--env.task=transfer_cube",
        "--env.cameras=[top]",
        f"--env.observation_height={IMG_H}",
        f"--env.observation_width={IMG_W}",
        f"--env.episode_length={steps}",
        "--eval.n_episodes=1",
        "--eval.batch_size=1",
        f"--output_dir={out}",
    ]
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "MUJOCO_GL": "egl"}
    proc = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr[-4000:]
    info = json.loads((out / "eval_info.json").read_text())
    overall = info["overall"]
    assert overall["n_episodes"] == 1
    assert overall["pc_success"] == 0.0  # an untrained policy does not hand over the cube in 20 steps
    assert info["per_task"][0]["task_group"] == "aloha_fast"
    # the video shows render() at the visualization size, one frame per step (LeRobot trims at episode end)
    import av

    (video,) = overall["video_paths"]
    with av.open(video) as container:
        frames = [f.to_ndarray(format="rgb24") for f in container.decode(video=0)]
    assert steps <= len(frames) <= steps + 1
    assert frames[0].shape == (240, 320, 3) and frames[0].std() > 1
