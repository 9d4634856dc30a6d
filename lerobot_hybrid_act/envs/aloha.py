"""`aloha_fast` env config (issue 3). Placeholder until the ALOHA work lands."""
