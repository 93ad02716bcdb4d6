"""Subcommands of the `alertd` command line."""


class CommandError(Exception):
    """A command failed in a way the user can fix; printed without a traceback, exit status 2."""
