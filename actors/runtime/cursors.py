"""Page cursors: every list that pages refuses a cursor it did not give out the same way,
`invalid_cursor` naming the `cursor` query parameter."""

from __future__ import annotations

from actors.runtime.errors import DomainError

# a row number as lists give them out: at most 18 digits always fits a bigint
_MAX_DIGITS = 18


class InvalidCursor(DomainError):
    """A list cursor that this server did not issue."""

    code = "invalid_cursor"
    category = "invalid"

    def __init__(self, message: str = "cursor is not one this server gave out") -> None:
        super().__init__(message, details={"field": "cursor"})


def row_cursor(raw: str | None) -> int | None:
    """A cursor that is a row number (what most lists give out), or None for the first
    page; anything else is an InvalidCursor."""
    if raw is None:
        return None
    if not (raw.isascii() and raw.isdigit()) or len(raw) > _MAX_DIGITS:
        raise InvalidCursor
    return int(raw)
