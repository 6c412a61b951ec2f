"""Marshmallow fields the API needs beyond the built-in ones."""

from __future__ import annotations

from datetime import datetime, timezone
from typing import Any

import marshmallow as ma


class Timestamp(ma.fields.AwareDateTime):
    """An ISO 8601 timestamp with a UTC offset; naive values are rejected.

    On output it also passes through values that are already ISO 8601 strings,
    because event history entries carry their times as text.
    """

    default_error_messages = {
        "invalid": "Not a valid ISO 8601 timestamp; use a form such as 2024-03-01T14:00:00+01:00.",
        "invalid_awareness": "The timestamp has no UTC offset; add one such as +00:00 or Z.",
        "out_of_range": "The timestamp is out of range once converted to UTC.",
    }

    def __init__(self, **kwargs: Any) -> None:
        metadata = {"example": "2024-03-01T14:00:00+01:00", **kwargs.pop("metadata", {})}
        super().__init__(format="iso", metadata=metadata, **kwargs)

    def _deserialize(self, value: Any, attr: str | None, data: Any, **kwargs: Any) -> datetime:
        parsed = super()._deserialize(value, attr, data, **kwargs)
        try:
            # Years 1 and 9999 with an offset overflow when compared with other
            # times, so such values are rejected here rather than deep in a command.
            parsed.astimezone(timezone.utc)
        except OverflowError:
            raise self.make_error("out_of_range") from None
        return parsed

    def _serialize(self, value: Any, attr: str | None, obj: Any, **kwargs: Any) -> Any:
        if isinstance(value, str):
            return value
        return super()._serialize(value, attr, obj, **kwargs)


class JsonBoolean(ma.fields.Boolean):
    """A JSON ``true`` or ``false`` in a request body.

    The built-in field also reads "yes", "1", 1 and 1.0, and its truthy sets
    cannot exclude numbers, because ``1 == True`` in Python.
    """

    default_error_messages = {"invalid": "Not a JSON boolean; send true or false."}

    def _deserialize(self, value: Any, attr: str | None, data: Any, **kwargs: Any) -> bool:
        if value is True or value is False:
            return value
        raise self.make_error("invalid")


class JsonInteger(ma.fields.Integer):
    """A JSON integer in a request body: "1", 1.0 and true are rejected."""

    default_error_messages = {"invalid": "Not a JSON integer; send a whole number without quotes or a decimal point."}

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(strict=True, **kwargs)


class JsonNumber(ma.fields.Float):
    """A JSON number in a request body: strings such as "1.5" and booleans are rejected."""

    default_error_messages = {"invalid": "Not a JSON number; send a number without quotes."}

    def _validated(self, value: Any) -> float:
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise self.make_error("invalid", input=value)
        return super()._validated(value)


class SatisfactionScore(ma.fields.Field):
    """A CSAT score: a whole number on the 1-5 scale, or "good" / "bad" on the good_bad scale."""

    default_error_messages = {
        "invalid": 'Not a valid score; send a whole number (1-5 scale) or "good"/"bad" (good_bad scale).',
    }

    def __init__(self, **kwargs: Any) -> None:
        metadata = {
            "oneOf": [{"type": "integer"}, {"type": "string", "enum": ["good", "bad"]}],
            **kwargs.pop("metadata", {}),
        }
        super().__init__(metadata=metadata, **kwargs)

    def _deserialize(self, value: Any, attr: str | None, data: Any, **kwargs: Any) -> int | str:
        if isinstance(value, bool):
            raise self.make_error("invalid")
        if isinstance(value, int):
            return value
        if isinstance(value, str) and value in ("good", "bad"):
            return value
        raise self.make_error("invalid")

    def _serialize(self, value: Any, attr: str | None, obj: Any, **kwargs: Any) -> Any:
        return value


class AnyJson(ma.fields.Raw):
    """A JSON value of any type, documented as such."""

    def __init__(self, **kwargs: Any) -> None:
        metadata = {"description": "Any JSON value.", **kwargs.pop("metadata", {})}
        super().__init__(metadata=metadata, **kwargs)
