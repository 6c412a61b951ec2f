"""Request parsing at the edge: strict JSON bodies that every later layer can store.

Beyond webargs' defaults, bodies must be UTF-8 JSON (no other charset), nest
at most ``MAX_JSON_DEPTH`` levels, and contain no NUL characters or unpaired
surrogates, which neither PostgreSQL text nor UTF-8 storage accepts.
"""

from __future__ import annotations

import json
from typing import Any

import flask
from webargs import core
from webargs.flaskparser import FlaskParser, abort, is_json_request

MAX_JSON_DEPTH = 32


def find_unstorable(value: Any) -> str | None:
    """Return why a parsed JSON value cannot be stored, or None if it can."""
    stack: list[tuple[Any, int]] = [(value, 1)]
    while stack:
        item, depth = stack.pop()
        if depth > MAX_JSON_DEPTH:
            return f"the JSON body nests deeper than {MAX_JSON_DEPTH} levels"
        if isinstance(item, str):
            reason = _unstorable_text(item)
            if reason:
                return reason
        elif isinstance(item, dict):
            for key, child in item.items():
                reason = _unstorable_text(key)
                if reason:
                    return reason
                stack.append((child, depth + 1))
        elif isinstance(item, list):
            stack.extend((child, depth + 1) for child in item)
    return None


def _unstorable_text(text: str) -> str | None:
    if "\x00" in text:
        return "the JSON body contains a NUL character (\\u0000); remove it"
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return "the JSON body contains an unpaired UTF-16 surrogate; send valid Unicode text"
    return None


class HubParser(FlaskParser):
    """A webargs parser that reads JSON bodies strictly (see the module docstring)."""

    def _raw_load_json(self, req: flask.Request) -> Any:
        data = req.get_data(cache=True)
        if not is_json_request(req):
            if data:
                abort(415, message="send the body as JSON with the header 'Content-Type: application/json'")
            return core.missing
        if not data.strip():
            return core.missing
        try:
            # RFC 8259 makes UTF-8 the only JSON encoding, so a charset parameter is ignored.
            value = json.loads(data.decode("utf-8"))
        except RecursionError:
            abort(400, messages={"json": [f"The JSON body nests deeper than {MAX_JSON_DEPTH} levels."]})
        reason = find_unstorable(value)
        if reason:
            abort(400, messages={"json": [reason[0].upper() + reason[1:] + "."]})
        return value
