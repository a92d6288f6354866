"""One error type for everything a user can get wrong: a one-line message and exit code 2."""

import reprlib

import click

MAX_SHOWN = 80  # characters of a user's value shown in a message

_repr = reprlib.Repr()
_repr.maxstring = _repr.maxother = MAX_SHOWN
_repr.maxlist = _repr.maxtuple = _repr.maxdict = _repr.maxset = 8
_repr.maxlevel = 3


def shown(value: object, limit: int = MAX_SHOWN) -> str:
    """``repr(value)``, bounded: never more than about ``limit`` characters, whatever ``value`` holds
    (a YAML alias bomb expands to a value whose full repr would not fit in memory)."""
    text = _repr.repr(value)
    return text if len(text) <= limit else text[: limit - 3] + "..."


class SegdilError(click.ClickException):
    """A user-facing error: printed as one line, exit code 2. Say what is wrong and what to do."""

    exit_code = 2

    def __init__(self, message: str):
        super().__init__(" ".join(str(message).split("\n")))
