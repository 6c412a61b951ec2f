"""``/api/v1/connections``: configure connectors, run syncs, and receive Zendesk webhooks.

Credentials go in with `POST` (or `PUT .../credentials`) and never come out:
responses name the credential fields that are set, nothing more. Creating
and changing connections needs the admin role; running a sync needs a role
that writes records; reading needs a role that reads history.

`POST /api/v1/connections/{id}/webhook` takes no token. It accepts a request
only when its Zendesk signature verifies with the connection's
`webhook_secret` credential and its timestamp is recent, and then starts a
sync of the connection in the background.
"""

from __future__ import annotations

import atexit
import logging
import os
from collections.abc import Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any
from uuid import UUID

import marshmallow as ma
from flask import Response, current_app, request
from marshmallow import fields, validate

from connectors.connection import (
    KINDS,
    Connection,
    create_connection,
    decrypt_credentials,
    get_connection,
    list_connections,
    rotate_connection_credentials,
    sync_runs,
    update_connection,
)
from connectors.http import ConnectorAuthError, RetriableAPIError
from connectors.schedule import start_embedded
from connectors.sync import SyncBusyError, SyncEngine, SyncError
from connectors.zendesk import WEBHOOK_SIGNATURE_HEADER, WEBHOOK_TIMESTAMP_HEADER, verify_webhook_signature
from hub.settings import ConfigurationError, read_flag
from hub.web.auth import READ_HISTORY, WRITE_RECORDS
from hub.web.blueprint import ApiBlueprint
from hub.web.errors import ApiError
from hub.web.fields import AnyJson, Timestamp
from hub.web.services import services
from hub.web.writes import json_response, write_context

logger = logging.getLogger(__name__)

# Only admin tokens hold this permission: it is in no other role's set.
MANAGE_CONNECTIONS = "connections:write"

# A webhook whose signature timestamp is further than this from now is a replay.
WEBHOOK_TOLERANCE_SECONDS = 300

EXTENSION_NAME = "hub.connectors"
SCHEDULER_EXTENSION = "hub.scheduler"


# Schemas.


class ConnectionCreateSchema(ma.Schema):
    kind = fields.String(required=True, validate=validate.OneOf(KINDS))
    base_url = fields.String(required=True, validate=validate.Length(min=1, max=2000))
    credentials = fields.Dict(
        keys=fields.String(), values=fields.String(), required=True, load_only=True,
        metadata={"description": "Zendesk: email and api_token, or oauth_token (webhook_secret for webhooks). "
                  "Freshdesk: api_key. ServiceNow: username and password, or oauth_token. Never returned."},
    )
    schedule = AnyJson(
        load_default=None, allow_none=True,
        metadata={"description": 'Sync schedule: {"every_minutes": 15}, a cron expression in UTC such as '
                  '"*/15 * * * *", or null to sync only on request.'},
    )
    options = fields.Dict(keys=fields.String(), load_default=dict)
    name = fields.String(load_default=None, allow_none=True, validate=validate.Length(max=200))


class ConnectionUpdateSchema(ma.Schema):
    base_url = fields.String(validate=validate.Length(min=1, max=2000))
    schedule = AnyJson(allow_none=True)
    options = fields.Dict(keys=fields.String())
    name = fields.String(validate=validate.Length(min=1, max=200))


class CredentialsSchema(ma.Schema):
    credentials = fields.Dict(keys=fields.String(), values=fields.String(), required=True, load_only=True)


class LastSyncSchema(ma.Schema):
    sync_id = fields.String()
    status = fields.String()
    trigger = fields.String(allow_none=True)
    started_at = Timestamp(allow_none=True)
    finished_at = Timestamp(allow_none=True)
    counts = fields.Dict(keys=fields.String(), values=fields.Integer())
    error = fields.String(allow_none=True)


class ConnectionSchema(ma.Schema):
    id = fields.String()
    version = fields.Integer()
    kind = fields.String()
    name = fields.String()
    base_url = fields.String()
    source_name = fields.String(metadata={"description": "The source.name of every event this connection records."})
    credential_fields = fields.List(fields.String(), metadata={"description": "Names of the credential fields set."})
    schedule = AnyJson(allow_none=True)
    options = fields.Dict()
    cursor = fields.Dict(metadata={"description": "Where the next sync resumes, per stream."})
    outbound_position = fields.Integer(metadata={"description": "Global position up to which hub changes were pushed."})
    current_sync = fields.Dict(allow_none=True)
    last_sync = fields.Nested(LastSyncSchema, allow_none=True)
    sync_count = fields.Integer()
    created_at = Timestamp()
    updated_at = Timestamp()


class ConnectionListSchema(ma.Schema):
    items = fields.List(fields.Nested(ConnectionSchema), required=True)


class SyncResultSchema(ma.Schema):
    connection_id = fields.String()
    sync_id = fields.String()
    trigger = fields.String()
    status = fields.String()
    started_at = Timestamp()
    finished_at = Timestamp()
    counts = fields.Dict(keys=fields.String(), values=fields.Integer())
    error = fields.String(allow_none=True)


class SyncRunSchema(ma.Schema):
    sync_id = fields.String()
    trigger = fields.String()
    status = fields.String(metadata={"description": "running, completed or failed."})
    started_at = Timestamp()
    finished_at = Timestamp(allow_none=True)
    pages = fields.Integer()
    pushed = fields.Integer()
    push_rejected = fields.Integer()
    counts = fields.Dict(keys=fields.String(), values=fields.Integer())
    error = fields.String(allow_none=True)
    cursor_before = fields.Dict()


class SyncRunListSchema(ma.Schema):
    items = fields.List(fields.Nested(SyncRunSchema), required=True)


class WebhookAcceptedSchema(ma.Schema):
    accepted = fields.Boolean()
    sync = fields.String(metadata={"description": "queued: a sync of the connection runs in the background, "
                             "unless one is running already."})


# Background syncs that webhooks start.


@dataclass
class ConnectorRuntime:
    """The sync engine and the worker threads of one Flask app."""

    engine: SyncEngine
    executor: ThreadPoolExecutor
    futures: list[Future[Any]] = field(default_factory=list)

    def start_sync(self, connection_id: UUID, trigger: str) -> Future[Any]:
        future = self.executor.submit(_background_sync, self.engine, connection_id, trigger)
        self.futures = [item for item in self.futures if not item.done()] + [future]
        return future


def _background_sync(engine: SyncEngine, connection_id: UUID, trigger: str) -> str:
    try:
        engine.sync(connection_id, trigger=trigger)
    except SyncBusyError:
        logger.info("Connection %s was already syncing; the %s sync was skipped", connection_id, trigger)
        return "busy"
    except SyncError as error:
        logger.warning("The %s sync of connection %s failed: %s", trigger, connection_id, error)
        return "failed"
    except Exception:
        logger.exception("The %s sync of connection %s failed unexpectedly", trigger, connection_id)
        return "failed"
    return "completed"


def runtime() -> ConnectorRuntime:
    """Return the connector runtime of the current Flask app, created on first use."""
    existing = current_app.extensions.get(EXTENSION_NAME)
    if existing is None:
        hub = services()
        existing = ConnectorRuntime(
            engine=SyncEngine(hub.application, hub.settings),
            executor=ThreadPoolExecutor(max_workers=2, thread_name_prefix="connector-sync"),
        )
        current_app.extensions.setdefault(EXTENSION_NAME, existing)
        existing = current_app.extensions[EXTENSION_NAME]
    return existing


# Views.


def create_blueprint() -> ApiBlueprint:
    blp = ApiBlueprint(
        "connections", __name__, url_prefix="/api/v1/connections",
        description="Connections to helpdesk and service-desk tools: configuration, syncs and webhooks.",
    )
    connection_schema = ConnectionSchema()

    @blp.route("", methods=["POST"], endpoint="create")
    @blp.requires(MANAGE_CONNECTIONS)
    @blp.arguments(ConnectionCreateSchema)
    @blp.response(201, ConnectionSchema)
    @blp.alt_response(409, response="CONFLICT")
    @blp.alt_response(500, response="INTERNAL_SERVER_ERROR")
    @blp.doc(
        summary="Create a connection",
        description="Stores the connection with its credentials encrypted under HUB_CIPHER_KEY. "
        "http:// URLs and private addresses need HUB_CONNECTORS_ALLOW_PRIVATE=1.",
    )
    def create(body: dict[str, Any]) -> Response:
        hub = services()
        with _configuration_errors():
            connection = create_connection(
                hub.application, write_context({}), kind=body["kind"], base_url=body["base_url"],
                credentials=body["credentials"], schedule=body["schedule"], options=body["options"],
                name=body["name"], settings=hub.settings,
            )
        headers = {"Location": f"/api/v1/connections/{connection.id}", "ETag": f'"{connection.version}"'}
        return json_response(201, connection_schema.dump(connection.state()), headers)

    @blp.route("", methods=["GET"], endpoint="list")
    @blp.requires(READ_HISTORY)
    @blp.response(200, ConnectionListSchema)
    @blp.doc(summary="List connections", description="Every connection, oldest first, without credentials.")
    def list_all() -> Response:
        items = [connection_schema.dump(item.state()) for item in list_connections(services().application)]
        return json_response(200, {"items": items})

    @blp.route("/<uuid:connection_id>", methods=["GET"], endpoint="read")
    @blp.requires(READ_HISTORY)
    @blp.response(200, ConnectionSchema)
    @blp.alt_response(404, response="NOT_FOUND")
    @blp.doc(summary="Read a connection", description="Its settings, cursor and last sync, without credentials.")
    def read(connection_id: UUID) -> Response:
        connection = get_connection(services().application, connection_id)
        return json_response(200, connection_schema.dump(connection.state()), {"ETag": f'"{connection.version}"'})

    @blp.route("/<uuid:connection_id>", methods=["PATCH"], endpoint="update")
    @blp.requires(MANAGE_CONNECTIONS)
    @blp.arguments(ConnectionUpdateSchema)
    @blp.response(200, ConnectionSchema)
    @blp.alt_response(404, response="NOT_FOUND")
    @blp.doc(summary="Change a connection", description="Change its name, base_url, schedule or options.")
    def update(body: dict[str, Any], connection_id: UUID) -> Response:
        hub = services()
        connection = update_connection(
            hub.application, write_context({}), connection_id, body, settings=hub.settings
        )
        return json_response(200, connection_schema.dump(connection.state()), {"ETag": f'"{connection.version}"'})

    @blp.route("/<uuid:connection_id>/credentials", methods=["PUT"], endpoint="credentials")
    @blp.requires(MANAGE_CONNECTIONS)
    @blp.arguments(CredentialsSchema)
    @blp.response(200, ConnectionSchema)
    @blp.alt_response(404, response="NOT_FOUND")
    @blp.alt_response(500, response="INTERNAL_SERVER_ERROR")
    @blp.doc(summary="Rotate a connection's credentials", description="Replaces every credential field.")
    def rotate(body: dict[str, Any], connection_id: UUID) -> Response:
        hub = services()
        with _configuration_errors():
            connection = rotate_connection_credentials(
                hub.application, write_context({}), connection_id, body["credentials"], settings=hub.settings
            )
        return json_response(200, connection_schema.dump(connection.state()), {"ETag": f'"{connection.version}"'})

    @blp.route("/<uuid:connection_id>/sync", methods=["POST"], endpoint="sync")
    @blp.requires(WRITE_RECORDS)
    @blp.response(200, SyncResultSchema)
    @blp.alt_response(404, response="NOT_FOUND")
    @blp.alt_response(409, response="CONFLICT")
    @blp.alt_response(500, response="INTERNAL_SERVER_ERROR")
    @blp.alt_response(502, response="BAD_GATEWAY")
    @blp.alt_response(503, response="SERVICE_UNAVAILABLE")
    @blp.doc(
        summary="Run a sync",
        description="Pulls the tool's changes and pushes the hub's, to the end, and responds with the counts. "
        "409 when the connection is syncing already; 502 or 503 when the tool failed, with the error.",
    )
    def sync(connection_id: UUID) -> Response:
        get_connection(services().application, connection_id)
        try:
            result = runtime().engine.sync(connection_id, trigger="api")
        except SyncBusyError as error:
            raise ApiError(409, "sync_running", str(error)) from None
        except SyncError as error:
            raise _sync_failure(error) from None
        return json_response(200, SyncResultSchema().dump(result.as_dict()))

    @blp.route("/<uuid:connection_id>/syncs", methods=["GET"], endpoint="syncs")
    @blp.requires(READ_HISTORY)
    @blp.response(200, SyncRunListSchema)
    @blp.alt_response(404, response="NOT_FOUND")
    @blp.doc(summary="List a connection's syncs", description="Newest first, with counts and errors.")
    def syncs(connection_id: UUID) -> Response:
        runs = sync_runs(services().application, connection_id)
        return json_response(200, SyncRunListSchema().dump({"items": runs}))

    @blp.route("/<uuid:connection_id>/webhook", methods=["POST"], endpoint="webhook")
    @blp.response(202, WebhookAcceptedSchema)
    @blp.alt_response(401, response="UNAUTHORIZED")
    @blp.alt_response(404, response="NOT_FOUND")
    @blp.doc(
        summary="Receive a Zendesk webhook",
        description="Needs no token: the X-Zendesk-Webhook-Signature and -Signature-Timestamp headers must "
        "verify with the connection's webhook_secret. Starts a sync of the connection.",
        security=[],
    )
    def webhook(connection_id: UUID) -> Response:
        connection = get_connection(services().application, connection_id)
        _verify_zendesk_webhook(connection)
        runtime().start_sync(connection_id, "webhook")
        return json_response(202, {"accepted": True, "sync": "queued"})

    blp.record_once(_start_scheduler_if_enabled)
    return blp


def _start_scheduler_if_enabled(state: Any) -> None:
    """Start the embedded scheduler when the app's RUN_SCHEDULER (or HUB_RUN_SCHEDULER) is set.

    `hub serve` sets it in the embedded mode; gunicorn workers in production
    leave it off, and the Procfile's `clock` process (`hub clock`) runs the jobs.
    """
    app = state.app
    enabled = app.config.get("RUN_SCHEDULER")
    if enabled is None:
        enabled = read_flag(os.environ, "HUB_RUN_SCHEDULER")
    if not enabled or SCHEDULER_EXTENSION in app.extensions:
        return
    hub = app.extensions["hub"]
    # The views are kept up to date by the app's own projection runner, so the
    # SLA clock and the reports only read them.
    hub_scheduler = start_embedded(hub.application, hub.settings, db=hub.projections)
    app.extensions[SCHEDULER_EXTENSION] = hub_scheduler
    atexit.register(hub_scheduler.shutdown, False)


def _verify_zendesk_webhook(connection: Connection) -> None:
    """Raise a 401 ApiError unless the request carries a fresh, valid Zendesk signature."""
    # The response gives no reason. The log records it, without the secret.
    rejected = ApiError(401, "invalid_signature", "the webhook signature is missing, invalid or expired")
    if connection.kind != "zendesk" or "webhook_secret" not in connection.credential_fields:
        logger.warning("Webhook for connection %s rejected: it has no Zendesk webhook_secret", connection.id)
        raise rejected
    signature = request.headers.get(WEBHOOK_SIGNATURE_HEADER, "")
    timestamp = request.headers.get(WEBHOOK_TIMESTAMP_HEADER, "")
    sent_at = _parse_webhook_time(timestamp)
    now = datetime.now(timezone.utc)
    if sent_at is None or abs((now - sent_at).total_seconds()) > WEBHOOK_TOLERANCE_SECONDS:
        logger.warning("Webhook for connection %s rejected: timestamp missing or outside %d s", connection.id, WEBHOOK_TOLERANCE_SECONDS)
        raise rejected
    settings = services().settings
    with _configuration_errors():
        credentials = decrypt_credentials(settings, connection.credentials_encrypted, connection.id)
    if not verify_webhook_signature(credentials["webhook_secret"], request.get_data(cache=True), signature, timestamp):
        logger.warning("Webhook for connection %s rejected: the signature does not verify", connection.id)
        raise rejected


def _parse_webhook_time(text: str) -> datetime | None:
    text = text.strip()
    if not text:
        return None
    if text.isascii() and text.isdigit():
        try:
            return datetime.fromtimestamp(int(text), tz=timezone.utc)
        except (OverflowError, OSError, ValueError):
            return None
    try:
        moment = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        return None
    return moment if moment.tzinfo is not None else None


def _sync_failure(error: SyncError) -> ApiError:
    cause = error.__cause__
    if isinstance(cause, ConnectorAuthError):
        return ApiError(502, "connector_auth_failed", str(error))
    if isinstance(cause, RetriableAPIError):
        return ApiError(503, "connector_unavailable", str(error))
    if isinstance(cause, ConfigurationError):
        return ApiError(500, "configuration_error", str(error))
    return ApiError(502, "connector_failed", str(error))


@contextmanager
def _configuration_errors() -> Iterator[None]:
    """Turn a ConfigurationError (such as a missing HUB_CIPHER_KEY) into a 500 naming the setting."""
    try:
        yield
    except ConfigurationError as error:
        logger.error("Connector configuration error: %s", error)
        raise ApiError(500, "configuration_error", str(error)) from None
