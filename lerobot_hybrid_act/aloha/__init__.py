"""ALOHA sim without the Hub and without gym-aloha's rendering cost (issue 3).

- :mod:`.sim` builds gym_aloha's own MuJoCo models and tasks (same physics, reward and success), minus the
  three 480x640 renders gym_aloha does on every step;
- :mod:`.env` is the fast Gymnasium env behind LeRobot's ``--env.type=aloha_fast``, whose config is in
  :mod:`.env_config`;
- :mod:`.scripted` holds the ACT paper's waypoint policies (end-effector / mocap env, MuJoCo 3.x fixes) and
  the replay of their joint commands in the joint-space env;
- :mod:`.recording` implements the ``hybrid-act-record`` task protocol for ``aloha_transfer_cube`` and
  ``aloha_insertion``.

Importing this package is cheap; the submodules import MuJoCo / dm_control.
"""

TASKS = ("transfer_cube", "insertion")
# gym_aloha's cameras (its MuJoCo models name them so).
CAMERAS = ("top", "angle", "front_close", "left_pillar", "right_pillar", "left_wrist", "right_wrist")
# Object state dims in qpos[16:]: cube pose (7) / peg pose (7) + socket pose (7).
ENV_STATE_DIM = {"transfer_cube": 7, "insertion": 14}
EPISODE_LENGTH = 400  # control steps (8 s at 50 fps), gym-aloha's: the env config, the scripted demos, the sim robot
