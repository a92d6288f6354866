"""What a file's first bytes say it is, for the messages that refuse a file of the wrong kind."""

from __future__ import annotations

from segdil.errors import shown


def text_start(head: bytes) -> str | None:
    """When ``head`` (a file's first bytes) is UTF-8 text: "a text file (it starts '...')"; else None."""
    for cut in range(4):  # the bytes read may end inside a multi-byte character
        try:
            text = head[: len(head) - cut].decode("utf-8")
        except UnicodeDecodeError:
            continue
        if "\x00" in text:
            return None
        first = text.strip().splitlines()[0] if text.strip() else ""
        return f"a text file (it starts {shown(first, 40)})"
    return None
