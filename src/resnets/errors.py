"""The one exception type for bad input from a user (a name, a path, a value)."""


class UserError(ValueError):
    """Bad input: the command line prints it as one line on stderr and exits with code 2."""


def one_line(error: BaseException) -> str:
    """The first line of an error's message (or its type's name), for a one-line UserError."""
    lines = str(error).strip().splitlines()
    return lines[0] if lines else type(error).__name__


def check_at_least(minimum: int, **options: object) -> None:
    """Refuse an option below ``minimum`` (None: not given), named as on the command line:
    ``check_at_least(1, batch_size=0)`` says "--batch-size must be at least 1, got 0"."""
    for name, value in options.items():
        if value is not None and value < minimum:
            raise UserError(f"--{name.replace('_', '-')} must be at least {minimum}, got {value}")
