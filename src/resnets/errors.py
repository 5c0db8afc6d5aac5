"""The one exception type for bad input from a user (a name, a path, a value)."""


class UserError(ValueError):
    """Bad input: the command line prints it as one line on stderr and exits with code 2."""
