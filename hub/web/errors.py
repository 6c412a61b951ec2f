"""JSON error responses: ``{"error": {"code", "message", "fields"}}`` for every failure.

Domain and application errors map onto HTTP statuses here, so that views only
raise and never build error responses themselves.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import Any

import marshmallow as ma
from flask import Flask, Response, current_app, jsonify, request
from werkzeug.exceptions import HTTPException

from hub.application import ConcurrentWriteError, NotFoundError, VersionMismatchError
from hub.domain.errors import InvalidValueError, StateConflictError

logger = logging.getLogger(__name__)

# Error codes for the HTTP statuses that the API returns without a more specific code.
STATUS_CODES = {
    400: "bad_request",
    401: "unauthorized",
    403: "forbidden",
    404: "not_found",
    405: "method_not_allowed",
    406: "not_acceptable",
    409: "conflict",
    412: "precondition_failed",
    413: "payload_too_large",
    415: "unsupported_media_type",
    422: "validation_failed",
    429: "too_many_requests",
    500: "internal_error",
    503: "unavailable",
}

# Request locations under which webargs nests its messages; errors name only the field.
LOCATIONS = ("json", "query", "querystring", "headers", "path", "view_args", "form", "files", "cookies")


class ErrorBodySchema(ma.Schema):
    def __deepcopy__(self, memo: dict[int, Any]) -> ErrorBodySchema:
        # Immutable once built; see hub.web.schemas.Schema.
        return self

    code = ma.fields.String(
        required=True, metadata={"description": "Stable machine-readable error code."}
    )
    message = ma.fields.String(required=True, metadata={"description": "What failed and how to fix it."})
    # Named field_messages here because Schema.fields is marshmallow's own attribute.
    field_messages = ma.fields.Dict(
        data_key="fields",
        keys=ma.fields.String(),
        values=ma.fields.List(ma.fields.String()),
        required=True,
        metadata={"description": "Messages per invalid field, by dotted field name; empty when no field is at fault."},
    )


class ErrorSchema(ma.Schema):
    """The body of every error response."""

    def __deepcopy__(self, memo: dict[int, Any]) -> ErrorSchema:
        return self

    error = ma.fields.Nested(ErrorBodySchema, required=True)


class ApiError(Exception):
    """An error the API returns as JSON with the given status, code and field messages."""

    def __init__(
        self,
        status: int,
        code: str,
        message: str,
        fields: Mapping[str, list[str]] | None = None,
        headers: Mapping[str, str] | None = None,
    ) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message
        self.fields = dict(fields or {})
        self.headers = dict(headers or {})


def error_body(code: str, message: str, fields: Mapping[str, list[str]] | None = None) -> dict[str, Any]:
    return {"error": {"code": code, "message": message, "fields": dict(fields or {})}}


def error_response(
    status: int,
    code: str,
    message: str,
    fields: Mapping[str, list[str]] | None = None,
    headers: Mapping[str, str] | None = None,
) -> Response:
    response = jsonify(error_body(code, message, fields))
    response.status_code = status
    for name, value in (headers or {}).items():
        response.headers[name] = value
    return response


def flatten_messages(messages: Any, schema: ma.Schema | None = None) -> dict[str, list[str]]:
    """Turn marshmallow's nested messages into ``{"dotted.field": [messages]}``.

    Webargs nests messages under the request location ("json", "query", ...).
    The location is dropped, and a message about the whole body is filed under "body".
    marshmallow files the messages of a ``Dict`` field's entry under "key" and
    "value". When the request ``schema`` is given to tell such fields apart, the
    path names the entry only, as in ``targets.high.first_response``.
    """
    flat: dict[str, list[str]] = {}

    def walk(value: Any, name: str, top: bool, node: Any) -> None:
        if isinstance(value, Mapping):
            for key, item in value.items():
                key = str(key)
                path = f"{name}.{key}" if name else key
                if top and key in LOCATIONS:
                    walk(item, "", False, node)
                elif key == "_schema":
                    walk(item, name, False, None)
                elif isinstance(node, ma.fields.Dict) and isinstance(item, Mapping):
                    walk_dict_entry(item, path, node)
                else:
                    walk(item, path, False, child_of(node, key))
        elif isinstance(value, (list, tuple)):
            for item in value:
                walk(item, name, False, node)
        else:
            flat.setdefault(name or "body", []).append(str(value))

    def walk_dict_entry(entry: Mapping[Any, Any], path: str, field: ma.fields.Dict) -> None:
        for part, item in entry.items():
            if part == "key":
                walk(item, path, False, None)
            elif part == "value":
                walk(item, path, False, field.value_field)
            else:
                walk(item, f"{path}.{part}", False, None)

    walk(messages, "", True, schema)
    return flat


def child_of(node: Any, key: str) -> Any:
    """Return the field of ``node`` (a schema or a field) that messages under ``key`` are about, or None."""
    if isinstance(node, ma.fields.Nested):
        node = node.schema
    if isinstance(node, ma.fields.List):
        return node.inner
    if isinstance(node, ma.Schema):
        for field_name, field in node.fields.items():
            if (field.data_key or field_name) == key:
                return field
    return None


def validation_message(fields: Mapping[str, list[str]]) -> str:
    names = ", ".join(sorted(fields)) or "the request"
    return f"invalid input in {names}; see fields for each problem"


def handle_api_error(error: ApiError) -> Response:
    return error_response(error.status, error.code, error.message, error.fields, error.headers)


def handle_http_exception(error: HTTPException) -> Response:
    """Render werkzeug and webargs errors (404, 405, 413, parse failures) as JSON."""
    status = error.code or 500
    data = getattr(error, "data", None) or {}
    fields: dict[str, list[str]] = {}
    headers: dict[str, str] = {}
    if "messages" in data:
        schema = data.get("schema")
        fields = flatten_messages(data["messages"], schema if isinstance(schema, ma.Schema) else None)
    if isinstance(data.get("headers"), Mapping):
        headers.update(data["headers"])
    if status == 405 and getattr(error, "valid_methods", None):
        headers["Allow"] = ", ".join(error.valid_methods)  # type: ignore[attr-defined]

    if status == 400 and "json" in (data.get("messages") or {}):
        reasons = [text for texts in fields.values() for text in texts]
        code = "invalid_json"
        if reasons and reasons[0] != "Invalid JSON body.":
            message = reasons[0]
        else:
            message = "the request body is not valid JSON; send a UTF-8 JSON object"
    elif status == 422 and fields:
        code, message = "validation_failed", validation_message(fields)
    elif status == 404:
        code, message = "not_found", f"no resource at {request.path}; check the path against /openapi.json"
    elif status == 405:
        allowed = headers.get("Allow", "")
        code, message = "method_not_allowed", f"{request.method} is not allowed on {request.path}; use {allowed}"
    elif status == 413:
        limit = current_app.config.get("MAX_CONTENT_LENGTH")
        code = "payload_too_large"
        message = f"the request body is larger than the limit of {limit} bytes; send a smaller body"
    else:
        code = STATUS_CODES.get(status, "http_error")
        message = data.get("message") or (error.description or error.name)
    if status >= 500:
        logger.error("HTTP %d on %s %s: %s", status, request.method, request.path, message)
    return error_response(status, code, message, fields, headers)


def handle_invalid_value(error: InvalidValueError) -> Response:
    fields = {error.field: [str(error)]}
    return error_response(422, "validation_failed", str(error), fields)


def handle_state_conflict(error: StateConflictError) -> Response:
    return error_response(409, "state_conflict", str(error), {})


def handle_concurrent_write(error: ConcurrentWriteError) -> Response:
    return error_response(409, "concurrent_write", str(error), {})


def handle_version_mismatch(error: VersionMismatchError) -> Response:
    message = str(error)
    headers = {"ETag": f'"{error.actual}"'}
    return error_response(412, "precondition_failed", message, {"If-Match": [message]}, headers)


def handle_not_found(error: NotFoundError) -> Response:
    return error_response(404, "not_found", str(error), {})


def handle_unexpected(error: Exception) -> Response:
    if isinstance(error, HTTPException):
        return handle_http_exception(error)
    logger.exception("Unhandled error on %s %s", request.method, request.path)
    return error_response(500, "internal_error", "the server failed to handle the request; it has been logged", {})


def register_error_handlers(app: Flask) -> None:
    """Install the JSON error handlers; call after flask-smorest's Api so that ours win."""
    app.register_error_handler(ApiError, handle_api_error)
    app.register_error_handler(HTTPException, handle_http_exception)
    app.register_error_handler(InvalidValueError, handle_invalid_value)
    app.register_error_handler(StateConflictError, handle_state_conflict)
    app.register_error_handler(ConcurrentWriteError, handle_concurrent_write)
    app.register_error_handler(VersionMismatchError, handle_version_mismatch)
    app.register_error_handler(NotFoundError, handle_not_found)
    app.register_error_handler(Exception, handle_unexpected)
