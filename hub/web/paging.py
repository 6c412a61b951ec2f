"""Offset cursors for lists that a view returns whole (KPI rows, the PDCA log)."""

from __future__ import annotations

from typing import Any

from hub.web.errors import ApiError

CURSOR_PREFIX = "offset:"


def page_of(rows: list[Any], cursor: str | None, limit: int) -> dict[str, Any]:
    """Return ``{"items", "next_cursor"}`` for one page of an in-memory list."""
    start = 0
    if cursor is not None:
        digits = cursor.removeprefix(CURSOR_PREFIX)
        if not cursor.startswith(CURSOR_PREFIX) or not (digits.isascii() and digits.isdigit()) or len(digits) > 9:
            message = f"cursor {cursor!r} is invalid; pass the next_cursor of the previous page unchanged"
            raise ApiError(422, "validation_failed", message, {"cursor": [message]})
        start = int(digits)
    end = start + limit
    next_cursor = f"{CURSOR_PREFIX}{end}" if end < len(rows) else None
    return {"items": rows[start:end], "next_cursor": next_cursor}
