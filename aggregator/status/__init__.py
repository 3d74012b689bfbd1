"""The operator's view: each source's health and the status snapshot (pure)."""
