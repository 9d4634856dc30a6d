"""LeRobot robot types shipped with the plugin: simulated robots for LeRobot's deployment tools
(``lerobot-rollout``, the async robot client), so a policy can be deployed offline, in tests and CI.

Each ``config_*`` module registers one ``RobotConfig`` subclass and stays cheap to import; LeRobot's
``make_robot_from_config`` finds the robot class in the matching module (``config_docking_sim`` ->
``docking_sim``), which imports the simulator.
"""

from . import config_aloha_sim, config_docking_sim  # noqa: F401  (registers the robot types)
