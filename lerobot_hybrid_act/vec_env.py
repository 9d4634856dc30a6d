"""The vectorised env that LeRobot's ``EnvConfig.create_envs`` returns, for the plugin's env types
(``docking.env_config``, ``aloha.env_config``)."""

from collections.abc import Callable


def make_vec_env(make_one: Callable, n_envs: int, use_async_envs: bool = False):
    """What LeRobot's `EnvConfig.create_envs` builds, for an env factory of ours: n envs (async only when
    asked and n > 1), same-step autoreset, each env frozen once its episode ends (as LeRobot's eval expects)."""
    import gymnasium as gym
    from lerobot.envs.utils import freeze_after_episode_end

    if n_envs < 1:
        raise ValueError(f"`n_envs` must be at least 1, got {n_envs}")
    fns = [freeze_after_episode_end(make_one)] * n_envs
    if use_async_envs and n_envs > 1:
        return gym.vector.AsyncVectorEnv(fns, context="forkserver", autoreset_mode=gym.vector.AutoresetMode.SAME_STEP)
    return gym.vector.SyncVectorEnv(fns, autoreset_mode=gym.vector.AutoresetMode.SAME_STEP)

