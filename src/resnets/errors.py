"""The one exception type for bad input from a user (a name, a path, a value)."""


class UserError(ValueError):
    """Bad input: the command line prints it as one line on stderr and exits with code 2."""


def one_line(error: BaseException) -> str:
    """The first line of an error's message (or its type's name), for a one-line UserError."""
    lines = str(error).strip().splitlines()
    return lines[0] if lines else type(error).__name__
