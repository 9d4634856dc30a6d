"""Reliability, in-process: the bad-input catalogue (docs/bad-input.md) and determinism.

Each bad input is one test asserting the error type AND that the message names the problem. Resume, atomic
checkpoints and multi-process training (lerobot-train subprocesses) are in test_train_reliability.py.
"""

import pytest
import torch
from conftest import ACTION_DIM, CHUNK, IMAGE_SHAPE, VARIANTS, make_batch, make_config, make_policy, observation, train_steps
from lerobot.configs import FeatureType, PolicyFeature, PreTrainedConfig
from lerobot.policies.factory import get_policy_class, make_pre_post_processors
from lerobot.utils.random_utils import set_seed

from lerobot_hybrid_act.modeling_hybrid_act import HybridActAPolicy

# ------------------------------------------------------------------------------------------ bad config


def test_no_image_and_no_environment_state(variant):
    config = make_config(variant, image=False)
    config.input_features = {"observation.state": PolicyFeature(FeatureType.STATE, (4,))}
    with pytest.raises(ValueError, match=r"needs at least one camera.*observation.environment_state.*'observation.state'"):
        get_policy_class(variant)(config)


def test_n_action_steps_above_chunk_size(variant):
    with pytest.raises(ValueError, match=rf"`n_action_steps` \({CHUNK + 1}\) cannot exceed `chunk_size` \({CHUNK}\)"):
        make_config(variant, n_action_steps=CHUNK + 1)


def test_temporal_ensembling_needs_one_action_step(variant):
    with pytest.raises(NotImplementedError, match=r"Temporal ensembling.*`n_action_steps=1` \(got 2\)"):
        make_config(variant, temporal_ensemble_coeff=0.01, n_action_steps=2)


def test_more_inference_steps_than_train_timesteps(variant):
    with pytest.raises(ValueError, match=r"`num_inference_steps` \(30\) cannot exceed `num_train_timesteps` \(20\)"):
        make_config(variant, num_inference_steps=30, num_train_timesteps=20)


@pytest.mark.parametrize("kl_weight", [0.0, -1.0])
def test_c_needs_positive_kl_weight(kl_weight):
    with pytest.raises(ValueError, match=rf"`kl_weight` must be > 0 for hybrid_act_c \(got {kl_weight}\).*hybrid_act_b"):
        make_config("hybrid_act_c", kl_weight=kl_weight)
    make_config("hybrid_act_b", kl_weight=kl_weight)  # not used by B: accepted


@pytest.mark.parametrize("variant", ["hybrid_act_b", "hybrid_act_c"])
@pytest.mark.parametrize("latent_dim", [0, -3])
def test_b_c_need_positive_latent_dim(variant, latent_dim):
    with pytest.raises(ValueError, match=rf"`latent_dim` must be positive for {variant}, got {latent_dim}"):
        make_config(variant, latent_dim=latent_dim)


def test_recon_weight_range_and_target():
    with pytest.raises(ValueError, match=r"`recon_weight` must be >= 0.*got -1.0"):
        make_config("hybrid_act_c", recon_weight=-1.0)
    with pytest.raises(ValueError, match=r"`recon_weight` > 0 needs prediction_type='sample'.*'epsilon'"):
        make_config("hybrid_act_c", recon_weight=1.0, prediction_type="epsilon")


@pytest.mark.parametrize("ema_decay", [1.0, -0.1])
def test_ema_decay_range(ema_decay):
    with pytest.raises(ValueError, match=rf"`ema_decay` must be in \[0, 1\).*got {ema_decay}"):
        make_config("hybrid_act_a", ema_decay=ema_decay)


@pytest.mark.parametrize(("field", "value"), [("noise_scheduler_type", "DPM"), ("kl_anneal", "cosine"), ("z_mode", "argmax")])
def test_unknown_choice(field, value):
    with pytest.raises(ValueError, match=rf"`{field}` must be one of \(.*\), got '{value}'"):
        make_config("hybrid_act_c", **{field: value})


# ------------------------------------------------------------------------------------------ bad data


def test_wrong_action_dim_in_training_batch(variant):
    policy = make_policy(variant)
    batch = make_batch()
    batch["action"] = torch.zeros(6, CHUNK, ACTION_DIM + 1)
    with pytest.raises(ValueError, match=rf"`action` has shape \({CHUNK}, {ACTION_DIM + 1}\).*\({CHUNK}, {ACTION_DIM}\)"):
        policy(batch)


def test_checkpoint_with_other_action_dim_than_dataset(tmp_path):
    """What `lerobot-train/eval --policy.path=<ckpt>` does on a dataset/env with another action dim: make_policy
    takes the features from the dataset and calls from_pretrained(path, config=...)."""
    make_policy("hybrid_act_c").save_pretrained(tmp_path)
    config = make_config("hybrid_act_c")
    config.output_features = {"action": PolicyFeature(FeatureType.ACTION, (ACTION_DIM + 1,))}
    with pytest.raises(ValueError, match=rf"model.safetensors was trained with other feature shapes.*actions of dim "
                                         rf"{ACTION_DIM} but this config/dataset has action dim {ACTION_DIM + 1}"):  # fmt: skip
        get_policy_class("hybrid_act_c").from_pretrained(tmp_path, config=config)


def test_image_of_wrong_shape_at_inference(variant):
    policy = make_policy(variant)
    obs = observation(make_batch(2))
    obs["observation.images.top"] = torch.zeros(2, 3, 24, 24)
    with pytest.raises(ValueError, match=r"`observation.images.top` has shape \(3, 24, 24\).*expects \(3, 32, 32\)"):
        policy.select_action(obs)
    assert IMAGE_SHAPE == (3, 32, 32)


@pytest.mark.parametrize("where", ["action", "observation.state", "observation.images.top"])
@pytest.mark.parametrize("bad", [float("nan"), float("inf")])
def test_nan_or_inf_in_training_batch_is_refused_and_weights_stay_finite(where, bad):
    policy = make_policy("hybrid_act_c", image=where.startswith("observation.images"))
    before = {k: v.clone() for k, v in policy.state_dict().items()}
    batch = make_batch(image=where.startswith("observation.images"))
    batch[where].view(-1)[3] = bad
    policy.train()
    optimizer = torch.optim.Adam(policy.parameters(), lr=1e-3)
    with pytest.raises(ValueError, match=rf"`{where}` contains NaN or inf"):
        loss, _ = policy(batch)  # raises before any loss exists: no backward, no optimizer step
        loss.backward()
        optimizer.step()
    after = policy.state_dict()
    assert all(torch.equal(before[k], after[k]) for k in before)  # nothing moved, kl_step included
    assert all(torch.isfinite(v).all() for v in after.values() if v.is_floating_point())


def test_missing_input_key_at_inference():
    policy = make_policy("hybrid_act_b")
    obs = observation(make_batch(2))
    del obs["observation.environment_state"]
    with pytest.raises(KeyError, match=r"Input `observation.environment_state` is missing"):
        policy.predict_action_chunk(obs)


def test_nan_in_observation_at_inference(variant):
    policy = make_policy(variant)
    obs = observation(make_batch(2))
    obs["observation.environment_state"][0, 0] = float("nan")
    with pytest.raises(ValueError, match=r"`observation.environment_state` contains NaN or inf"):
        policy.predict_action_chunk(obs)


# ------------------------------------------------------------------------------------------ bad checkpoints


def test_loading_c_checkpoint_as_a(tmp_path):
    make_policy("hybrid_act_c").save_pretrained(tmp_path)
    with pytest.raises(ValueError, match=r"HybridActAPolicy needs a HybridActAConfig.*'hybrid_act_c'.*get_policy_class"):
        HybridActAPolicy.from_pretrained(tmp_path)


@pytest.mark.parametrize("keep", ["header", "half", "all_but_10_bytes", "nothing"])
def test_truncated_model_safetensors(tmp_path, keep):
    make_policy("hybrid_act_c").save_pretrained(tmp_path)
    weights = tmp_path / "model.safetensors"
    data = weights.read_bytes()
    weights.write_bytes(data[: {"header": 5, "half": len(data) // 2, "all_but_10_bytes": len(data) - 10, "nothing": 0}[keep]])
    with pytest.raises(ValueError, match=rf"{weights}.* is truncated or corrupt"):
        get_policy_class("hybrid_act_c").from_pretrained(tmp_path)


@pytest.fixture
def checkpoint_with_processors(tmp_path):
    policy = make_policy("hybrid_act_c")
    stats = {
        "action": {"min": -torch.ones(ACTION_DIM), "max": torch.ones(ACTION_DIM)},
        "observation.state": {"mean": torch.zeros(4), "std": torch.ones(4)},
    }
    pre, post = make_pre_post_processors(policy.config, dataset_stats=stats)
    for obj in (policy, pre, post):
        obj.save_pretrained(tmp_path / "ckpt")
    return policy.config, tmp_path / "ckpt"


def test_missing_processor_config(checkpoint_with_processors):
    config, ckpt = checkpoint_with_processors
    (ckpt / "policy_preprocessor.json").unlink()
    with pytest.raises(FileNotFoundError, match=r"'policy_preprocessor.json' not found in directory"):
        make_pre_post_processors(config, pretrained_path=str(ckpt))


def test_missing_processor_stats(checkpoint_with_processors):
    config, ckpt = checkpoint_with_processors
    make_pre_post_processors(config, pretrained_path=str(ckpt))  # complete: loads
    (stats,) = ckpt.glob("policy_preprocessor_*normalizer_processor.safetensors")
    stats.unlink()
    with pytest.raises(FileNotFoundError, match=rf"State file '{stats.name}' was not found"):
        make_pre_post_processors(config, pretrained_path=str(ckpt))


# ------------------------------------------------------------------------------------------ determinism


@pytest.fixture(scope="module")
def checkpoints(tmp_path_factory) -> dict:
    """One briefly trained checkpoint per variant (state-only: the queue/ensembling/sampling paths do not
    depend on the camera, and this keeps the test fast)."""
    root = tmp_path_factory.mktemp("determinism")
    for v in VARIANTS:
        train_steps(make_policy(v, image=False), make_batch(image=False), steps=3).save_pretrained(root / v)
    return {v: root / v for v in VARIANTS}


def rollout(path, seed: int, ensemble: bool, steps: int = 5) -> torch.Tensor:
    """A fresh load of the checkpoint, seeded, run through select_action (queue or temporal ensembling)."""
    config = PreTrainedConfig.from_pretrained(path)
    config.temporal_ensemble_coeff, config.n_action_steps = (0.01, 1) if ensemble else (None, 3)
    policy = get_policy_class(path.name).from_pretrained(path, config=config)
    policy.eval()
    policy.reset()
    set_seed(seed)
    obs = [observation(make_batch(2, image=False, seed=10 + i)) for i in range(steps)]
    return torch.stack([policy.select_action(o) for o in obs])


@pytest.mark.parametrize("ensemble", [False, True], ids=["queue", "ensembling"])
def test_same_seed_same_checkpoint_same_actions(checkpoints, variant, ensemble):
    a = rollout(checkpoints[variant], seed=0, ensemble=ensemble)
    b = rollout(checkpoints[variant], seed=0, ensemble=ensemble)
    assert torch.isfinite(a).all()
    assert torch.equal(a, b)
    # The seed is what matters (not the load): another seed gives other diffusion noise, so other actions.
    assert not torch.equal(a, rollout(checkpoints[variant], seed=1, ensemble=ensemble))


def test_c_different_seed_gives_different_z(checkpoints):
    policy = get_policy_class("hybrid_act_c").from_pretrained(checkpoints["hybrid_act_c"])
    obs = observation(make_batch(2, image=False, seed=10))

    def z(seed):  # without a generator, z ~ p(z|obs) follows the global seed (LeRobot's set_seed)
        set_seed(seed)
        return policy.sample_style(obs)

    assert torch.equal(z(0), z(0))
    assert not torch.allclose(z(0), z(1))
    policy.config.z_mode = "mean"  # the prior mean does not depend on the seed
    assert torch.equal(z(0), z(1))
