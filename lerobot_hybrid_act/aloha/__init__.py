"""ALOHA sim without the Hub and without gym-aloha's rendering cost (issue 3).

- :mod:`.sim` builds gym_aloha's own MuJoCo models and tasks (same physics, reward and success), minus the
  three 480x640 renders gym_aloha does on every step;
- :mod:`.env` is the fast Gymnasium env behind LeRobot's ``--env.type=aloha_fast``;
- :mod:`.scripted` holds the ACT paper's waypoint policies (end-effector / mocap env, MuJoCo 3.x fixes) and
  the replay of their joint commands in the joint-space env;
- :mod:`.recording` implements the ``hybrid-act-record`` task protocol for ``aloha_transfer_cube`` and
  ``aloha_insertion``.

Importing this package is cheap; the submodules import MuJoCo / dm_control.
"""

TASKS = ("transfer_cube", "insertion")
