"""alertd: silent emergency alerts located, dispatched to the nearest responders, and escalated on deadlines."""

__version__ = "0.1.0"
