"""``/api/v1/webhooks``: subscribe receiver URLs to events and inspect their deliveries.

Every route needs the ``webhooks:manage`` permission (the admin role). A
secret appears in a response only when it is created: on subscription and on
rotation.

In the embedded mode (projections on a thread of the API process) the dispatch
view and a delivery worker run on threads too. Otherwise a ``hub webhooks
work`` process delivers, and the API applies the dispatch view itself after
each endpoint change, so that its responses include the change.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any
from uuid import UUID

import marshmallow as ma
from flask import Flask, Response, request
from marshmallow import fields, validate

from hub.secrets import SecretBox, load_secret_box
from hub.settings import ConfigurationError
from hub.web.blueprint import ApiBlueprint
from hub.web.errors import ApiError
from hub.web.fields import JsonBoolean, Timestamp
from hub.web.paging import page_of
from hub.web.schemas import MAX_PAGE_SIZE, Schema
from hub.web.services import EXTENSION_NAME, Services, services
from hub.web.writes import json_response, parse_if_match, write_context
from webhooks.endpoint import MAX_DESCRIPTION_LENGTH, MAX_URL_LENGTH, WebhookEndpoint
from webhooks.outbox import MESSAGE_STATES, Outbox, ReplayTooLargeError, WebhookDispatchView
from webhooks.service import WebhookService
from webhooks.worker import DispatchRunner, WebhookRuntime

logger = logging.getLogger(__name__)

MANAGE_WEBHOOKS = "webhooks:manage"

URL_PREFIX = "/api/v1/webhooks"


# Schemas.


class EndpointCreateSchema(Schema):
    url = fields.String(
        required=True, validate=validate.Length(min=1, max=MAX_URL_LENGTH),
        metadata={"description": "The receiver's http or https URL.", "example": "https://hooks.example.com/hub"},
    )
    event_types = fields.List(
        fields.String(validate=validate.Length(min=1, max=100)), required=True,
        validate=validate.Length(min=1, max=100),
        metadata={
            "description": 'Event types to receive: exact ("ticket.escalated", "sla.breached"), '
            'a kind ("ticket.*") or "*".',
            "example": ["ticket.escalated", "sla.breached", "ticket.reopened"],
        },
    )
    description = fields.String(
        load_default=None, allow_none=True, validate=validate.Length(max=MAX_DESCRIPTION_LENGTH)
    )


class EndpointUpdateSchema(Schema):
    url = fields.String(validate=validate.Length(min=1, max=MAX_URL_LENGTH))
    event_types = fields.List(
        fields.String(validate=validate.Length(min=1, max=100)), validate=validate.Length(min=1, max=100)
    )
    description = fields.String(validate=validate.Length(max=MAX_DESCRIPTION_LENGTH))
    enabled = JsonBoolean(metadata={"description": "false disables deliveries and cancels queued ones."})


class ReplaySchema(Schema):
    since = Timestamp(required=True, metadata={"description": "Start of the window, by recording time."})
    until = Timestamp(required=True, metadata={"description": "End of the window, inclusive."})


class DeliveriesQuerySchema(Schema):
    cursor = fields.String(validate=validate.Length(min=1, max=500))
    limit = fields.Integer(load_default=50, validate=validate.Range(min=1, max=MAX_PAGE_SIZE))
    state = fields.String(validate=validate.OneOf(MESSAGE_STATES))


class IfMatchSchema(Schema):
    class Meta:
        unknown = ma.EXCLUDE

    if_match = fields.String(data_key="If-Match", validate=validate.Length(min=1, max=100))


class EndpointSchema(Schema):
    id = fields.String()
    version = fields.Integer()
    url = fields.String()
    event_types = fields.List(fields.String())
    description = fields.String()
    enabled = fields.Boolean()
    disabled_reason = fields.String(allow_none=True)
    previous_secret_expires_at = Timestamp(
        allow_none=True, metadata={"description": "Until then deliveries also carry a signature with the previous secret."}
    )
    created_at = Timestamp()
    updated_at = Timestamp()


class EndpointWithSecretSchema(EndpointSchema):
    secret = fields.String(metadata={"description": "whsec_ and base64 of 32 random bytes; shown only now."})


class EndpointListSchema(Schema):
    items = fields.List(fields.Nested(EndpointSchema))
    next_cursor = fields.String(allow_none=True)


class AttemptSchema(Schema):
    number = fields.Integer()
    attempted_at = Timestamp()
    webhook_timestamp = fields.Integer(allow_none=True)
    status = fields.Integer(allow_none=True)
    latency_ms = fields.Float(allow_none=True)
    response_body = fields.String(allow_none=True, metadata={"description": "The first 1 KB of the response body."})
    error = fields.String(allow_none=True)
    outcome = fields.String(metadata={"description": "success, retry, failed, gone or abandoned."})


class MessageSchema(Schema):
    id = fields.String(metadata={"description": "The webhook-id header; the same on every attempt."})
    position = fields.Integer(allow_none=True)
    event_type = fields.String()
    state = fields.String(metadata={"description": ", ".join(MESSAGE_STATES)})
    attempt_count = fields.Integer()
    created_at = Timestamp()
    next_attempt_at = Timestamp(allow_none=True)
    last_status = fields.Integer(allow_none=True)
    last_error = fields.String(allow_none=True)
    finished_at = Timestamp(allow_none=True)
    attempts = fields.List(fields.Nested(AttemptSchema))


class DeliveryPageSchema(Schema):
    items = fields.List(fields.Nested(MessageSchema))
    next_cursor = fields.String(allow_none=True)


class ReplayResultSchema(Schema):
    queued = fields.Integer(metadata={"description": "Events that got a new message."})
    requeued = fields.Integer(metadata={"description": "Finished messages sent again under their id."})
    unchanged = fields.Integer(metadata={"description": "Messages still pending, left as they are."})


class TestMessageSchema(Schema):
    message_id = fields.String()


# Per-app webhook objects.


@dataclass
class WebhookComponents:
    service: WebhookService
    runtime: WebhookRuntime | None


class _LazySecretBox(SecretBox):
    """Loads the secret key on first use, so the API starts even where webhooks cannot store secrets."""

    def __init__(self, settings: Any) -> None:
        self._settings = settings
        self._box: SecretBox | None = None

    def _loaded(self) -> SecretBox:
        if self._box is None:
            try:
                self._box = load_secret_box(self._settings)
            except ConfigurationError as error:
                raise ApiError(503, "unavailable", f"webhooks cannot store signing secrets: {error}") from None
        return self._box

    def encrypt(self, plaintext: str) -> str:
        return self._loaded().encrypt(plaintext)

    def decrypt(self, ciphertext: str) -> str:
        return self._loaded().decrypt(ciphertext)


def build_components(hub: Services, *, start_runtime: bool) -> WebhookComponents:
    """Create the webhook service on the hub's store, with the threads of the embedded mode if asked."""
    application = hub.application
    settings = hub.settings
    runtime: WebhookRuntime | None = None
    if start_runtime:
        runtime = WebhookRuntime(application, settings=settings, db=hub.projections).start()
        outbox = runtime.outbox
        box: SecretBox = runtime.worker.secret_box
        wake = runtime.wake
    else:
        outbox = Outbox(application, hub.projections)
        if settings.create_tables:
            outbox.setup()
        dispatcher = DispatchRunner(
            application, WebhookDispatchView(), hub.projections, create_tables=settings.create_tables
        )
        dispatcher.setup()
        box = _LazySecretBox(settings)

        def wake() -> None:
            # No dispatch thread runs in this process, so the view is applied
            # here and the response to an endpoint change already includes it.
            dispatcher.catch_up()

    service = WebhookService(
        application, outbox, box, allow_private=settings.webhooks_allow_private, wake=wake
    )
    return WebhookComponents(service, runtime)


def components_for(hub: Services) -> WebhookComponents:
    # Kept on the Services object, so an app whose services are replaced (as
    # the API tests do per store) builds webhook objects for the new store.
    components: WebhookComponents | None = getattr(hub, "webhook_components", None)
    if components is None:
        components = build_components(hub, start_runtime=False)
        hub.webhook_components = components  # type: ignore[attr-defined]
    return components


def init_app(app: Flask) -> None:
    """Start the embedded webhook threads with the app's services, and stop them when those close."""
    hub: Services = app.extensions[EXTENSION_NAME]
    if hub.background_runner is None:
        return
    try:
        components = build_components(hub, start_runtime=True)
    except ConfigurationError as error:
        logger.error("Webhook deliveries are off in this process: %s", error)
        return
    hub.webhook_components = components  # type: ignore[attr-defined]
    close_services = hub.close

    def close() -> None:
        if components.runtime is not None:
            components.runtime.stop()
        close_services()

    hub.close = close  # type: ignore[method-assign]


def webhook_service() -> WebhookService:
    return components_for(services()).service


def endpoint_body(endpoint: WebhookEndpoint, secret: str | None = None) -> dict[str, Any]:
    state = endpoint.state()
    state.pop("deleted")
    if secret is not None:
        state["secret"] = secret
    return state


def endpoint_row_body(row: dict[str, Any]) -> dict[str, Any]:
    body = dict(row)
    body["enabled"] = body.pop("status") == "enabled"
    return body


def etag_headers(endpoint: WebhookEndpoint) -> dict[str, str]:
    return {"ETag": f'"{endpoint.version}"'}


# Routes.


def create_blueprint() -> ApiBlueprint:
    blp = ApiBlueprint(
        "webhooks", __name__, url_prefix=URL_PREFIX,
        description="Webhook endpoints: signed Standard Webhooks deliveries of the events you choose, "
        "retried for about 27 hours, with every attempt visible.",
    )
    blp.record_once(lambda state: init_app(state.app))
    endpoint_schema = EndpointSchema()
    secret_schema = EndpointWithSecretSchema()
    list_schema = EndpointListSchema()
    delivery_schema = DeliveryPageSchema()

    @blp.after_app_request
    def wake_webhooks(response: Response) -> Response:
        # Any successful write may record events that endpoints subscribe to.
        if request.method in ("POST", "PUT", "PATCH", "DELETE") and response.status_code < 300:
            hub = request_services()
            components = getattr(hub, "webhook_components", None) if hub is not None else None
            if components is not None and components.runtime is not None:
                components.runtime.wake()
        return response

    @blp.route("", methods=["POST"], endpoint="create")
    @blp.requires(MANAGE_WEBHOOKS)
    @blp.arguments(EndpointCreateSchema)
    @blp.response(201, EndpointWithSecretSchema)
    @blp.doc(
        summary="Subscribe a URL",
        description="The URL must be http or https and must not point into a private network or at a "
        "cloud metadata address. The response carries the signing secret, shown only here.",
    )
    def create(body: dict[str, Any]) -> Response:
        endpoint, secret = webhook_service().create_endpoint(
            write_context({}), url=body["url"], event_types=body["event_types"], description=body["description"]
        )
        headers = {"Location": f"{URL_PREFIX}/{endpoint.id}", **etag_headers(endpoint)}
        return json_response(201, secret_schema.dump(endpoint_body(endpoint, secret)), headers)

    @blp.route("", methods=["GET"], endpoint="list")
    @blp.requires(MANAGE_WEBHOOKS)
    @blp.arguments(DeliveriesQuerySchema(only=("cursor", "limit")), location="query")
    @blp.response(200, EndpointListSchema)
    @blp.doc(summary="List endpoints", description="Endpoints that are not deleted, oldest first.")
    def list_endpoints(query: dict[str, Any]) -> Response:
        rows = [endpoint_row_body(row) for row in webhook_service().list_endpoints()]
        return json_response(200, list_schema.dump(page_of(rows, query.get("cursor"), query["limit"])))

    @blp.route("/<uuid:endpoint_id>", methods=["GET"], endpoint="read")
    @blp.requires(MANAGE_WEBHOOKS)
    @blp.response(200, EndpointSchema)
    @blp.alt_response(404, response="NOT_FOUND")
    @blp.doc(summary="Read an endpoint")
    def read(endpoint_id: UUID) -> Response:
        endpoint = webhook_service().get_endpoint(endpoint_id)
        return json_response(200, endpoint_schema.dump(endpoint_body(endpoint)), etag_headers(endpoint))

    @blp.route("/<uuid:endpoint_id>", methods=["PATCH"], endpoint="update")
    @blp.requires(MANAGE_WEBHOOKS)
    @blp.arguments(IfMatchSchema, location="headers")
    @blp.arguments(EndpointUpdateSchema)
    @blp.response(200, EndpointSchema)
    @blp.alt_response(404, response="NOT_FOUND")
    @blp.doc(
        summary="Change an endpoint",
        description="Change url, event_types or description, or set enabled. Disabling cancels queued "
        "messages; after enabling again, replay the window you want delivered.",
    )
    def update(headers: dict[str, Any], body: dict[str, Any], endpoint_id: UUID) -> Response:
        endpoint = webhook_service().update_endpoint(
            write_context({}), endpoint_id, expected_version=parse_if_match(headers.get("if_match")), **body
        )
        return json_response(200, endpoint_schema.dump(endpoint_body(endpoint)), etag_headers(endpoint))

    @blp.route("/<uuid:endpoint_id>", methods=["DELETE"], endpoint="delete")
    @blp.requires(MANAGE_WEBHOOKS)
    @blp.response(204)
    @blp.alt_response(404, response="NOT_FOUND")
    @blp.doc(summary="Delete an endpoint", description="Deliveries stop and queued messages are cancelled.")
    def delete(endpoint_id: UUID) -> Response:
        webhook_service().delete_endpoint(write_context({}), endpoint_id)
        return Response(status=204)

    @blp.route("/<uuid:endpoint_id>/rotate-secret", methods=["POST"], endpoint="rotate_secret")
    @blp.requires(MANAGE_WEBHOOKS)
    @blp.response(200, EndpointWithSecretSchema)
    @blp.alt_response(404, response="NOT_FOUND")
    @blp.doc(
        summary="Rotate the signing secret",
        description="Returns the new secret, shown only here. For 24 hours every delivery carries "
        "a signature with the new and one with the previous secret.",
    )
    def rotate_secret(endpoint_id: UUID) -> Response:
        endpoint, secret = webhook_service().rotate_secret(write_context({}), endpoint_id)
        return json_response(200, secret_schema.dump(endpoint_body(endpoint, secret)), etag_headers(endpoint))

    @blp.route("/<uuid:endpoint_id>/deliveries", methods=["GET"], endpoint="deliveries")
    @blp.requires(MANAGE_WEBHOOKS)
    @blp.arguments(DeliveriesQuerySchema, location="query")
    @blp.response(200, DeliveryPageSchema)
    @blp.alt_response(404, response="NOT_FOUND")
    @blp.doc(
        summary="List deliveries",
        description="Messages newest first, each with its attempts (time, status, latency, the first "
        "1 KB of the response, error) and the next attempt time of a pending message.",
    )
    def deliveries(query: dict[str, Any], endpoint_id: UUID) -> Response:
        offset = offset_of(query.get("cursor"))
        limit = query["limit"]
        # Reading one row more than the limit shows whether another page exists.
        rows = webhook_service().deliveries(endpoint_id, limit=limit + 1, offset=offset, state=query.get("state"))
        next_cursor = f"offset:{offset + limit}" if len(rows) > limit else None
        return json_response(200, delivery_schema.dump({"items": rows[:limit], "next_cursor": next_cursor}))

    @blp.route("/<uuid:endpoint_id>/replay", methods=["POST"], endpoint="replay")
    @blp.requires(MANAGE_WEBHOOKS)
    @blp.arguments(ReplaySchema)
    @blp.response(202, ReplayResultSchema)
    @blp.alt_response(404, response="NOT_FOUND")
    @blp.doc(
        summary="Deliver a time window again",
        description="Every event recorded between since and until that the endpoint subscribes to "
        "is delivered again, older than the subscription included. An event delivered before keeps "
        "its message id, so receivers that drop duplicates by webhook-id still can.",
    )
    def replay(body: dict[str, Any], endpoint_id: UUID) -> Response:
        try:
            counts = webhook_service().replay(endpoint_id, body["since"], body["until"])
        except ReplayTooLargeError as error:
            raise ApiError(422, "validation_failed", str(error), {"until": [str(error)]}) from None
        return json_response(202, counts)

    @blp.route("/<uuid:endpoint_id>/test", methods=["POST"], endpoint="test")
    @blp.requires(MANAGE_WEBHOOKS)
    @blp.response(202, TestMessageSchema)
    @blp.alt_response(404, response="NOT_FOUND")
    @blp.doc(
        summary="Send a test message",
        description='Queues a message of type "endpoint.test"; follow it in the deliveries.',
    )
    def send_test(endpoint_id: UUID) -> Response:
        return json_response(202, {"message_id": webhook_service().send_test(endpoint_id)})

    return blp


def request_services() -> Services | None:
    from flask import current_app

    return current_app.extensions.get(EXTENSION_NAME)


def offset_of(cursor: str | None) -> int:
    """Read the offset of a deliveries cursor (``offset:N``)."""
    if cursor is None:
        return 0
    digits = cursor.removeprefix("offset:")
    if not cursor.startswith("offset:") or not (digits.isascii() and digits.isdigit()) or len(digits) > 9:
        message = f"cursor {cursor!r} is invalid; pass the next_cursor of the previous page unchanged"
        raise ApiError(422, "validation_failed", message, {"cursor": [message]})
    return int(digits)

