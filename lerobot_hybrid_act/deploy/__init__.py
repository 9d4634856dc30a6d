"""Deployment helpers around LeRobot's own tools (``hybrid-act-policy-server`` for async inference)."""
