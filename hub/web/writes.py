"""Writes over HTTP: the command context, If-Match, Idempotency-Key, and generated command routes.

Idempotency works on two levels. A successful response is stored under its
key, so a repeat returns it byte for byte. The key also becomes the domain's
external event id (for commands) or a deterministic id (for creates). A repeat
may find no stored response, because another worker is still writing it or the
process stopped in between. Such a repeat still records nothing twice.
"""

from __future__ import annotations

import hashlib
import json
import logging
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any
from uuid import UUID

import marshmallow as ma
from flask import Response, request

from hub.application import Outcome
from hub.domain import Context, external_uuid
from hub.events import AGGREGATE_KINDS, to_plain
from hub.web.auth import ROLE_ACTOR_KINDS, current_token
from hub.web.blueprint import ApiBlueprint
from hub.web.errors import ApiError
from hub.web.schemas import CommandHeadersSchema
from hub.web.services import services
from hub.web.storage import StoredResponse

logger = logging.getLogger(__name__)

# The fields of WriteSchema; the rest of a command body are the command's arguments.
WRITE_FIELDS = ("occurred_at", "actor", "external_event_id")

SOURCE_NAME = "api"

_ETAG_VERSION = re.compile(r'^(?:W/)?"?([0-9]{1,18})"?$')

# Headers a stored response keeps for its replays.
REPLAYED_HEADERS = ("Location", "ETag")


def parse_if_match(value: str | None) -> int | None:
    """Parse the version an If-Match header requests, or None for no header or ``*``."""
    if value is None or value.strip() == "*":
        return None
    match = _ETAG_VERSION.match(value.strip())
    if match is None:
        message = f'If-Match {value!r} is not a version; send the ETag of the record, such as "3"'
        raise ApiError(400, "invalid_header", message, {"If-Match": [message]})
    return int(match.group(1))


def write_context(
    body: Mapping[str, Any], *, external_id: str | None = None, external_event_id: str | None = None
) -> Context:
    """Build the command context: the explicit actor, or the token's name and role."""
    token = current_token()
    actor = body.get("actor")
    if actor:
        actor_kind, actor_id = actor["kind"], actor["id"]
    else:
        actor_kind, actor_id = ROLE_ACTOR_KINDS.get(token.role, "integration"), token.name
    ctx = Context(
        actor_kind=actor_kind,
        actor_id=actor_id,
        source_name=SOURCE_NAME,
        occurred_at=body.get("occurred_at"),
        external_id=external_id,
        external_event_id=body.get("external_event_id") or external_event_id,
        recorded_by=token.name,
    )
    ctx.check_not_in_future()
    return ctx


def json_response(status: int, payload: Any, headers: Mapping[str, str] | None = None) -> Response:
    response = Response(
        json.dumps(to_plain(payload), ensure_ascii=False, separators=(",", ":")),
        status=status,
        mimetype="application/json",
    )
    for name, value in (headers or {}).items():
        response.headers[name] = value
    return response


def state_response(
    status: int, schema: ma.Schema, aggregate: Any, headers: Mapping[str, str] | None = None
) -> Response:
    """Return an aggregate's state with its version as the ETag."""
    all_headers = {"ETag": f'"{aggregate.version}"', **(headers or {})}
    return json_response(status, schema.dump(aggregate.state()), all_headers)


def request_fingerprint() -> str:
    """Hash what makes two requests the same: method, path, JSON body and If-Match."""
    body = request.get_json(silent=True)
    if body is None:
        body = request.get_data(as_text=True)
    material = json.dumps(
        [request.method, request.path, body, request.headers.get("If-Match")],
        sort_keys=True, ensure_ascii=True,
    )
    return hashlib.sha256(material.encode()).hexdigest()


def replay(stored: StoredResponse) -> Response:
    response = Response(stored.body, status=stored.status, mimetype="application/json")
    for name, value in stored.headers.items():
        response.headers[name] = value
    response.headers["Idempotent-Replayed"] = "true"
    return response


def key_reused() -> ApiError:
    message = (
        "this Idempotency-Key was already used with a different request; "
        "send a new key for a new request"
    )
    return ApiError(422, "idempotency_key_reused", message, {"Idempotency-Key": [message]})


def idempotent(key: str | None, run: Callable[[str | None], Response]) -> Response:
    """Run a write once per Idempotency-Key and replay its stored response for repeats.

    ``run`` receives a seed derived from the token and the key, or None without
    a key. It turns the seed into an external event id or a deterministic id.
    """
    if key is None:
        return run(None)
    token = current_token()
    store = services().idempotency
    key_hash = store.key_hash(token.token_id, key)
    fingerprint = request_fingerprint()

    stored = store.find(key_hash)
    if stored is not None:
        if stored.fingerprint != fingerprint:
            raise key_reused()
        logger.info("Replaying the stored response for an Idempotency-Key of token %s", token.token_id)
        return replay(stored)

    response = run(f"idempotency-key:{token.token_id}:{key}")
    if not 200 <= response.status_code < 300:
        return response
    headers = {name: response.headers[name] for name in REPLAYED_HEADERS if name in response.headers}
    candidate = StoredResponse(fingerprint, response.status_code, response.get_data(as_text=True), headers)
    kept = store.store(key_hash, candidate)
    if kept.fingerprint != fingerprint:
        # A concurrent request with the same key and another body stored its response first.
        raise key_reused()
    return response


# Commands.


Translate = Callable[[dict[str, Any], Context], tuple[str, dict[str, Any]]]


def arguments_of(body: Mapping[str, Any]) -> dict[str, Any]:
    return {name: value for name, value in body.items() if name not in WRITE_FIELDS}


def method(name: str) -> Translate:
    """Translate a body into a call of the aggregate method ``name`` with the body's fields."""

    def translate(body: dict[str, Any], ctx: Context) -> tuple[str, dict[str, Any]]:
        return name, arguments_of(body)

    return translate


def run_command(
    aggregate_class: type,
    aggregate_id: UUID,
    translate: Translate,
    headers: Mapping[str, Any],
    body: dict[str, Any],
    schema: ma.Schema,
) -> Response:
    """Run one command on an aggregate and respond with its state after the command.

    A repeated external event id (or Idempotency-Key) records nothing and returns
    the state right after the original command.
    """
    expected_version = parse_if_match(headers.get("if_match"))
    application = services().application

    def run(seed: str | None) -> Response:
        ctx = write_context(body, external_event_id=seed)
        command, arguments = translate(body, ctx)
        outcome = application.execute(
            aggregate_class, aggregate_id, command, ctx, expected_version=expected_version, **arguments
        )
        aggregate = outcome.aggregate
        if outcome.duplicate:
            recorded_version = aggregate.external_event_ids[ctx.external_event_id]
            aggregate = application.get(aggregate_class, aggregate_id, version=recorded_version)
        return state_response(200, schema, aggregate)

    return idempotent(headers.get("idempotency_key"), run)


def run_create(
    aggregate_class: type,
    create: Callable[[Context, UUID | None], Outcome],
    headers: Mapping[str, Any],
    body: dict[str, Any],
    schema: ma.Schema,
    location: Callable[[UUID], str],
    *,
    external: Mapping[str, Any] | None = None,
) -> Response:
    """Create an aggregate and respond 201 with its state, or 200 with the existing one.

    ``create`` receives the context and the id to use (None lets the application
    choose one, deterministic for an external record). A create repeated under the
    same Idempotency-Key gets the original response: 201 with the first version.
    """
    application = services().application
    kind = AGGREGATE_KINDS[aggregate_class]

    def run(seed: str | None) -> Response:
        ctx = write_context(body, external_id=str(external["id"]) if external else None)
        aggregate_id = None
        if seed is not None and not external:
            aggregate_id = external_uuid(kind, "idempotency-key", seed)
        outcome = create(ctx, aggregate_id)
        aggregate = outcome.aggregate
        if not outcome.duplicate:
            return state_response(201, schema, aggregate, {"Location": location(aggregate.id)})
        if aggregate_id is not None:
            first: Any = application.get(aggregate_class, aggregate.id, version=1)
            return state_response(201, schema, first, {"Location": location(aggregate.id)})
        return state_response(200, schema, aggregate, {"Location": location(aggregate.id)})

    return idempotent(headers.get("idempotency_key"), run)


@dataclass(frozen=True)
class CommandRoute:
    """One ``POST .../{id}/<path>`` command: its body schema and how the body maps onto the aggregate."""

    path: str
    schema: type[ma.Schema]
    translate: Translate
    summary: str
    description: str = ""


def add_command_routes(
    blp: ApiBlueprint,
    aggregate_class: type,
    id_name: str,
    response_schema: ma.Schema,
    commands: Sequence[CommandRoute],
    permission: str,
) -> None:
    """Register one POST route per command on ``/<id>/<path>``."""
    for command in commands:
        _add_command_route(blp, aggregate_class, id_name, response_schema, command, permission)


def _add_command_route(
    blp: ApiBlueprint,
    aggregate_class: type,
    id_name: str,
    response_schema: ma.Schema,
    command: CommandRoute,
    permission: str,
) -> None:
    endpoint = "command_" + re.sub(r"[^a-z0-9]+", "_", command.path)

    @blp.route(f"/<uuid:{id_name}>/{command.path}", methods=["POST"], endpoint=endpoint)
    @blp.requires(permission)
    @blp.arguments(CommandHeadersSchema, location="headers")
    @blp.arguments(command.schema)
    @blp.response(200, response_schema)
    @blp.alt_response(404, response="NOT_FOUND")
    @blp.alt_response(409, response="CONFLICT")
    @blp.alt_response(412, response="PRECONDITION_FAILED")
    @blp.doc(summary=command.summary, description=command.description or command.summary)
    def view(headers: dict[str, Any], body: dict[str, Any], **path: UUID) -> Response:
        return run_command(aggregate_class, path[id_name], command.translate, headers, body, response_schema)
