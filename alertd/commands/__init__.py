"""Subcommands of the `alertd` command line."""


class CommandError(Exception):
    """A command failed in a way the user can fix; printed without a traceback, exit status 2. `problems` (if any)
    are printed one a line after it."""

    def __init__(self, message: str, problems: list[str] | None = None) -> None:
        super().__init__(message)
        self.problems = problems
