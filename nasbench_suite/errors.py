"""The one exception the CLI turns into a single error line and exit code 2."""


class UsageError(Exception):
    """Bad input from the user: unknown names, impossible pairs, bad numbers, bad files."""
