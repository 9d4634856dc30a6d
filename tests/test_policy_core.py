"""Behaviour of the shared core and of what distinguishes A, B and C."""

import subprocess
import sys

import pytest
import torch
from conftest import ACTION_DIM, CHUNK, make_batch, make_policy, observation, train_steps


def fixed_eval_loss(policy, batch) -> float:
    """Loss with fixed timesteps/noise (same torch seed) and no parameter update."""
    policy.eval()
    torch.manual_seed(123)
    with torch.no_grad():
        losses = [policy(batch)[1]["diffusion_loss"] for _ in range(8)]
    return sum(losses) / len(losses)


def test_plugin_registered_in_fresh_interpreter():
    code = (
        "from lerobot.utils.import_utils import register_third_party_plugins\n"
        "from lerobot.configs import PreTrainedConfig\n"
        "from lerobot.policies.factory import get_policy_class, make_pre_post_processors\n"
        "register_third_party_plugins()\n"
        "for v in ('hybrid_act_a', 'hybrid_act_b', 'hybrid_act_c'):\n"
        "    cfg = PreTrainedConfig.get_choice_class(v)(device='cpu')\n"
        "    assert cfg.type == v\n"
        "    print(v, get_policy_class(v).__name__, type(make_pre_post_processors(cfg)[0]).__name__)\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr[-3000:]
    assert "hybrid_act_a HybridActAPolicy DataProcessorPipeline" in out.stdout
    assert "hybrid_act_b HybridActBPolicy" in out.stdout
    assert "hybrid_act_c HybridActCPolicy" in out.stdout


def test_loss_goes_down_on_fixed_batch(variant):
    policy = make_policy(variant)
    batch = make_batch()
    before = fixed_eval_loss(policy, batch)
    train_steps(policy, batch, steps=60)
    after = fixed_eval_loss(policy, batch)
    assert after < 0.6 * before, (before, after)


def test_c_logs_kl_and_respects_free_bits_floor():
    batch = make_batch()
    # A strong, un-annealed KL pulls q onto p; free bits stop the pull below the floor, so KL stays higher.
    kls = {}
    for free_bits in (0.0, 0.5):
        policy = make_policy("hybrid_act_c", kl_weight=5.0, kl_anneal="none", kl_free_bits=free_bits)
        train_steps(policy, batch, steps=60)
        policy.train()
        _, info = policy(batch)
        assert torch.isfinite(torch.tensor(info["kl"]))
        assert {"diffusion_loss", "kl", "kl_beta", "kl_active_dims", "kl_min_dim"} <= info.keys()
        kls[free_bits] = info["kl"]
    assert kls[0.5] > 2 * kls[0.0], kls


def _bimodal_batch(n: int = 8) -> dict[str, torch.Tensor]:
    """One observation, two opposite demo chunks (+c and -c): only z can tell which one to produce."""
    batch = make_batch(n, image=False)
    for key in ("observation.state", "observation.environment_state"):
        batch[key] = batch[key][:1].expand_as(batch[key]).clone()
    t = torch.linspace(0, 1, CHUNK)
    sign = torch.tensor([1.0, -1.0]).repeat(n // 2).view(n, 1, 1)
    batch["action"] = sign * torch.stack([t, 0.5 * t], dim=-1) * 0.8
    return batch


def z_steers_chunks(recon_weight: float) -> float:
    """Share of reverse-diffusion samples, decoded with the posterior mean of a demo chunk, nearer that chunk
    than the opposite one (0.5 = z ignored)."""
    batch = _bimodal_batch()
    policy = make_policy("hybrid_act_c", image=False, recon_weight=recon_weight)
    train_steps(policy, batch, steps=150)
    target, obs = batch["action"], observation(batch)
    z = policy.infer_style(batch)
    hits = []
    for j in range(4):
        x = policy.predict_action_chunk(obs, z=z, generator=torch.Generator().manual_seed(j))
        hits.append(((x - target).pow(2).mean((1, 2)) < (x + target).pow(2).mean((1, 2))).float().mean())
    policy.train()
    with torch.no_grad():
        _, info = policy(batch)
    assert ("recon_loss" in info) == (recon_weight > 0)
    return float(torch.stack(hits).mean())


def test_posterior_z_of_a_mode_steers_c_to_that_mode():
    # One observation, two opposite chunks: decoding with the posterior z of one gives that one (C's defaults, with
    # the reconstruction term, logged as recon_loss). How much the term adds is measured on the two-mode toy
    # (benchmarks/two_mode_toy.py), where the effect needs more than this batch's 150 steps to show.
    assert z_steers_chunks(1.0) >= 0.85
    z_steers_chunks(0.0)  # without the term: no recon_loss in the log (asserted inside)


def test_kl_annealing_linear_and_cyclic():
    policy = make_policy("hybrid_act_c", kl_weight=2.0, kl_anneal="linear", kl_anneal_steps=4)
    betas = [policy.model.kl_beta(advance=True) for _ in range(6)]
    assert betas == [0.0, 0.5, 1.0, 1.5, 2.0, 2.0]
    policy = make_policy("hybrid_act_c", kl_weight=1.0, kl_anneal="cyclic", kl_anneal_steps=4)
    betas = [policy.model.kl_beta(advance=True) for _ in range(8)]
    assert betas == [0.0, 0.5, 1.0, 1.0, 0.0, 0.5, 1.0, 1.0]
    # Eval-mode forward passes do not advance the schedule.
    step = int(policy.model.kl_step)
    policy.eval()
    with torch.no_grad():
        policy(make_batch())
    assert int(policy.model.kl_step) == step


def test_a_ignores_z():
    policy = train_steps(make_policy("hybrid_act_a"), make_batch(), steps=5)
    obs = observation(make_batch(2, seed=1))
    g = lambda: torch.Generator().manual_seed(0)  # noqa: E731
    a1 = policy.predict_action_chunk(obs, z=torch.zeros(4), generator=g())
    a2 = policy.predict_action_chunk(obs, z=torch.full((4,), 5.0), generator=g())
    a3 = policy.predict_action_chunk(obs, generator=g())
    assert torch.equal(a1, a2) and torch.equal(a1, a3)


def test_b_style_is_a_deterministic_function_of_obs():
    policy = train_steps(make_policy("hybrid_act_b"), make_batch(), steps=10)
    obs = observation(make_batch(3, seed=1))
    z1 = policy.sample_style(obs, torch.Generator().manual_seed(0))
    z2 = policy.sample_style(obs, torch.Generator().manual_seed(1))
    assert torch.equal(z1, z2)
    assert not torch.allclose(z1[0], z1[1])  # different observations, different z
    # And z matters to the denoiser once trained (FiLM starts at identity).
    g = lambda: torch.Generator().manual_seed(0)  # noqa: E731
    assert not torch.allclose(
        policy.predict_action_chunk(obs, generator=g()),
        policy.predict_action_chunk(obs, z=z1 + 3.0, generator=g()),
    )


def test_c_samples_differ_across_z_draws_and_repeat_for_same_seed():
    policy = train_steps(make_policy("hybrid_act_c", z_mode="sample"), make_batch(), steps=20)
    obs = observation(make_batch(2, seed=1))
    s0a = policy.predict_action_chunk(obs, generator=torch.Generator().manual_seed(0))
    s0b = policy.predict_action_chunk(obs, generator=torch.Generator().manual_seed(0))
    s1 = policy.predict_action_chunk(obs, generator=torch.Generator().manual_seed(1))
    assert torch.equal(s0a, s0b)
    assert not torch.allclose(s0a, s1)
    # Same diffusion noise, different z: the chunk changes, so z carries information.
    za, zb = policy.sample_style(obs, torch.Generator().manual_seed(0)), policy.sample_style(obs, torch.Generator().manual_seed(1)) + 2.0
    ca = policy.predict_action_chunk(obs, z=za, generator=torch.Generator().manual_seed(0))
    cb = policy.predict_action_chunk(obs, z=zb, generator=torch.Generator().manual_seed(0))
    assert (ca - cb).abs().mean() > 1e-3


def test_c_z_modes_and_explicit_style():
    policy = train_steps(make_policy("hybrid_act_c", kl_anneal="none"), make_batch(), steps=5)
    obs = observation(make_batch(2, seed=1))
    g = lambda s: torch.Generator().manual_seed(s)  # noqa: E731
    policy.config.z_mode = "mean"  # the prior's most likely z: the same whatever the generator
    assert torch.equal(policy.sample_style(obs, g(0)), policy.sample_style(obs, g(1)))
    policy.config.z_mode = "sample"
    assert not torch.equal(policy.sample_style(obs, g(0)), policy.sample_style(obs, g(1)))
    z_dim = policy.sample_style(obs).shape[-1]
    policy.set_style(torch.ones(z_dim))  # an explicit z wins over every z_mode until set_style(None)
    a = policy.predict_action_chunk(obs, generator=g(3))
    assert torch.equal(a, policy.predict_action_chunk(obs, z=torch.ones(2, z_dim), generator=g(3)))
    with pytest.raises(ValueError, match=f"z_dim={z_dim}"):
        policy.set_style(torch.ones(z_dim + 1))
    policy.set_style(None)
    assert not torch.equal(a, policy.predict_action_chunk(obs, generator=g(3)))


@pytest.mark.parametrize("ensemble", [None, 0.01])
def test_select_action_paths(variant, ensemble):
    overrides = {"temporal_ensemble_coeff": ensemble, "n_action_steps": 1} if ensemble else {"n_action_steps": 3}
    policy = make_policy(variant, **overrides)
    policy.reset()
    obs = observation(make_batch(2, seed=2))
    chunk_calls = 0
    original = policy.predict_action_chunk

    def counting(*args, **kwargs):
        nonlocal chunk_calls
        chunk_calls += 1
        return original(*args, **kwargs)

    policy.predict_action_chunk = counting
    actions = [policy.select_action(obs) for _ in range(6)]
    assert all(a.shape == (2, ACTION_DIM) and torch.isfinite(a).all() for a in actions)
    # ensembling: a chunk every step; queue: every 3 steps, after C's first chunk, which runs only its hold_steps (2)
    first = 3
    if policy.config.z_mode == "hold" and policy.config.hold_steps is not None:
        first = min(first, policy.config.hold_steps)
    assert chunk_calls == (6 if ensemble else 1 + -(-(6 - first) // 3))


def test_temporal_ensembling_uses_lerobot_ensembler():
    from lerobot.policies.act.modeling_act import ACTTemporalEnsembler

    policy = make_policy("hybrid_act_a", temporal_ensemble_coeff=0.01, n_action_steps=1)
    assert isinstance(policy.temporal_ensembler, ACTTemporalEnsembler)
    assert policy.temporal_ensembler.chunk_size == CHUNK


def test_padded_actions_do_not_contribute_to_loss(monkeypatch):
    policy = make_policy("hybrid_act_a")
    batch = make_batch()
    batch["action_is_pad"][:, 5:] = True
    pred = torch.zeros(6, CHUNK, ACTION_DIM)
    target = torch.ones(6, CHUNK, ACTION_DIM)
    target[:, 5:] = 100.0  # huge error on padded positions only
    monkeypatch.setattr(policy.model, "denoising_target", lambda obs, z, actions, known, recon: (pred, target, None))
    loss, info = policy(batch)
    assert loss.item() == pytest.approx(1.0)
    assert info["diffusion_loss"] == pytest.approx(1.0)


def test_reconstruction_in_the_diffusion_pass_equals_two_separate_passes():
    """recon_weight: the noisy chunk and the pure-noise chunk go through the denoiser as one doubled batch; each half
    must be what its own pass gives (same timesteps, same z, same observation)."""
    policy = make_policy("hybrid_act_c", rtc_train_max_delay=3)
    model, batch = policy.model, make_batch()
    obs = model.encode_observation(batch)
    z = torch.randn(batch["action"].shape[0], model.style.z_dim)
    known = torch.arange(CHUNK).view(1, -1, 1) < torch.randint(0, 4, (z.shape[0], 1, 1))
    torch.manual_seed(5)
    pred, target, recon = model.denoising_target(obs, z, batch["action"], known, reconstruct=True)
    torch.manual_seed(5)  # the same draws, in the same order: noise, timesteps, then the pure noise
    noise = torch.randn_like(batch["action"])
    t = torch.randint(0, policy.config.num_train_timesteps, (z.shape[0],))
    noisy = torch.where(known, batch["action"], model.train_scheduler.add_noise(batch["action"], noise, t))
    pure = torch.where(known, batch["action"], torch.randn_like(batch["action"]))
    first = model.sampler.timesteps[0].expand(z.shape[0])
    torch.testing.assert_close(pred, model.denoiser(noisy, t, obs, z, known), rtol=1e-4, atol=1e-5)
    torch.testing.assert_close(recon, model.denoiser(pure, first, obs, z, known), rtol=1e-4, atol=1e-5)
    assert torch.equal(target, batch["action"]) and not torch.allclose(pred, recon)


def test_given_prefix_actions_do_not_contribute_to_loss(monkeypatch):
    """rtc_train_max_delay: a chunk's given first actions are input, not predicted: no loss on them."""
    policy = make_policy("hybrid_act_a", rtc_train_max_delay=3)
    seen = []

    def denoising_target(obs, z, actions, known, recon):
        seen.append(known)
        target = torch.where(known, 100.0, 1.0).expand_as(actions)  # huge error on the given positions only
        return torch.zeros_like(actions), target, None

    monkeypatch.setattr(policy.model, "denoising_target", denoising_target)
    torch.manual_seed(0)
    loss, info = policy(make_batch(64))
    prefix = seen[0].squeeze(-1).sum(1)  # given actions per chunk
    assert seen[0].shape == (64, CHUNK, 1) and set(prefix.tolist()) == {0, 1, 2, 3}  # d ~ U{0..3}
    assert torch.equal(seen[0], torch.arange(CHUNK).view(1, -1, 1) < prefix.view(-1, 1, 1))  # the first d
    assert info["diffusion_loss"] == pytest.approx(1.0)


def test_save_load_round_trip_gives_identical_actions(variant, tmp_path):
    from lerobot.policies.factory import get_policy_class

    policy = train_steps(make_policy(variant), make_batch(), steps=3)
    policy.save_pretrained(tmp_path)
    loaded = get_policy_class(variant).from_pretrained(tmp_path)
    obs = observation(make_batch(2, seed=3))
    for p in (policy, loaded):
        p.reset()
    a = policy.predict_action_chunk(obs, generator=torch.Generator().manual_seed(7))
    b = loaded.predict_action_chunk(obs, generator=torch.Generator().manual_seed(7))
    assert torch.equal(a, b)
    assert int(loaded.model.kl_step) == int(policy.model.kl_step)


def test_loading_c_checkpoint_as_a_fails_clearly(tmp_path):
    from lerobot_hybrid_act.modeling_hybrid_act import HybridActAPolicy

    make_policy("hybrid_act_c").save_pretrained(tmp_path)
    with pytest.raises(ValueError, match="HybridActAConfig.*hybrid_act_c"):
        HybridActAPolicy.from_pretrained(tmp_path)


def test_state_only_config_works():
    policy = make_policy("hybrid_act_c", image=False)
    batch = make_batch(image=False)
    loss, _ = policy(batch)
    loss.backward()
    assert policy.predict_action_chunk(observation(batch)).shape == (6, CHUNK, ACTION_DIM)


def test_ema_weights_follow_training_and_are_what_acts(tmp_path):
    """ema_decay > 0: update() (called by lerobot-train after each optimizer step) moves the averaged copy towards
    the trained weights; the average is not optimised, is what predict_action_chunk uses, and is saved."""
    from lerobot.policies.factory import get_policy_class

    policy = make_policy("hybrid_act_c", ema_decay=0.9)
    optimised = {id(p) for g in policy.get_optim_params() for p in g["params"]}
    assert not optimised & {id(p) for p in policy.model_ema.parameters()}
    assert all(torch.equal(a, m) for a, m in zip(policy.model_ema.parameters(), policy.model.parameters()))
    batch = make_batch()
    opt = torch.optim.Adam(policy.get_optim_params(), lr=1e-3)
    for _ in range(5):
        loss, _ = policy(batch)
        opt.zero_grad()
        loss.backward()
        opt.step()
        policy.update()
    assert int(policy.ema_updates) == 5 and int(policy.model_ema.kl_step) == int(policy.model.kl_step) == 5
    gaps = [(a - m).abs().max().item() for a, m in zip(policy.model_ema.parameters(), policy.model.parameters())]
    assert max(gaps) > 1e-5  # lags behind the trained weights ...
    first = next(policy.model_ema.parameters()).clone()
    policy.update()
    assert not torch.equal(first, next(policy.model_ema.parameters()))  # ... and moves towards them
    obs = observation(make_batch(2, seed=3))
    act = policy.predict_action_chunk(obs, generator=torch.Generator().manual_seed(7))
    policy.model_ema, trained = None, policy.model_ema  # act with the trained weights instead
    assert not torch.equal(act, policy.predict_action_chunk(obs, generator=torch.Generator().manual_seed(7)))
    policy.model_ema = trained
    policy.save_pretrained(tmp_path)
    loaded = get_policy_class("hybrid_act_c").from_pretrained(tmp_path)
    assert int(loaded.ema_updates) == 6
    assert torch.equal(act, loaded.predict_action_chunk(obs, generator=torch.Generator().manual_seed(7)))


def test_without_ema_update_is_a_no_op():
    policy = make_policy("hybrid_act_a")
    before = [p.clone() for p in policy.parameters()]
    policy.update()
    assert policy.model_ema is None and policy.inference_model is policy.model
    assert all(torch.equal(a, b) for a, b in zip(before, policy.parameters()))


def test_acting_switches_a_policy_left_in_train_mode_to_eval(variant):
    """predict_action_chunk / select_action skip the eval() walk when already in eval mode, but a policy that
    lerobot-train left in train mode (dropout on) must still act in eval mode, every submodule included."""
    policy = make_policy(variant, dropout=0.5)
    obs = observation(make_batch(2, seed=3))
    for act in (lambda: policy.predict_action_chunk(obs), lambda: (policy.reset(), policy.select_action(obs))):
        policy.train()
        act()
        assert not any(m.training for m in policy.modules())
    g = torch.Generator().manual_seed(0)
    first = policy.predict_action_chunk(obs, generator=g)
    policy.train()
    again = policy.predict_action_chunk(obs, generator=torch.Generator().manual_seed(0))
    assert torch.equal(first, again)  # dropout would make the second chunk differ


@pytest.mark.parametrize("steps,clip", [(1, True), (4, True), (4, False)])
def test_last_ddim_step_shortcut_equals_the_scheduler(steps, clip):
    """The sampler skips diffusers' DDIM arithmetic on its last step (to alpha_bar = 1: the clipped x0 prediction);
    the chunk is the one the scheduler's own step gives. A narrow clip range makes the clip bite."""
    policy = train_steps(make_policy("hybrid_act_c", image=False, num_inference_steps=steps, clip_sample=clip,
                                     clip_sample_range=0.05), make_batch(image=False), steps=5)  # fmt: skip
    obs = observation(make_batch(3, image=False, seed=2))
    z = policy.sample_style(obs, torch.Generator().manual_seed(0))
    assert policy.model.last_step_is_x0
    fast = policy.predict_action_chunk(obs, z=z, generator=torch.Generator().manual_seed(1))
    policy.model.last_step_is_x0 = False
    slow = policy.predict_action_chunk(obs, z=z, generator=torch.Generator().manual_seed(1))
    assert torch.allclose(fast, slow, atol=1e-6), (fast - slow).abs().max()
    assert (slow.abs().max() <= 0.05 + 1e-6) == clip  # the clip acted, or values leave the range without it
