"""The exceptions the CLI turns into a single error line and exit code 2."""


class UsageError(Exception):
    """Bad input from the user: unknown names, impossible pairs, bad numbers, bad files."""


class Diverged(RuntimeError):
    """The search loss became NaN or infinite (the run records it in its folder)."""
