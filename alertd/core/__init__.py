"""The core: alert lifecycle, location choice, dispatch and escalation policy. No transport imports."""
