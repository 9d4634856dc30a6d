"""`docking` env config (issue 4). Placeholder until the docking work lands."""
