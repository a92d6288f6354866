"""One error type for everything a user can get wrong: a one-line message and exit code 2."""

import click


class SegdilError(click.ClickException):
    """A user-facing error: printed as one line, exit code 2. Say what is wrong and what to do."""

    exit_code = 2

    def __init__(self, message: str):
        super().__init__(" ".join(str(message).split("\n")))
