"""Notifiers that are no channel of their own: the log, and the console's live list (the contract is service.ports)."""
