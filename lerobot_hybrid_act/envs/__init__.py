"""LeRobot env types shipped with the plugin. Each module registers one `EnvConfig` subclass and must
stay cheap to import (the heavy simulator code is imported lazily in `create_envs`)."""

from . import aloha, docking  # noqa: F401
