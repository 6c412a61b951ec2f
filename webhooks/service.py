"""Webhook use cases for the API and the CLI: subscribe, change, rotate, delete, replay, test.

The service encrypts new secrets before they reach an event. It checks URLs
with the SSRF guard at subscription time (the worker checks them again before
each attempt) and event types against the hub's catalog. After a change it
waits briefly for the dispatch view, so that a list read right after a write
shows the change.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from datetime import datetime
from typing import Any
from uuid import UUID, uuid4

from eventsourcing.domain import Aggregate
from eventsourcing.persistence import IntegrityError

from hub.application import ConcurrentWriteError, NotFoundError, VersionMismatchError
from hub.domain import Context
from hub.domain.base import require_aware
from hub.domain.errors import InvalidValueError, StateConflictError
from hub.events import AGGREGATE_KINDS, SPECIAL_TYPES, snake_case
from hub.secrets import SecretBox
from webhooks.endpoint import WebhookEndpoint, normalize_event_types
from webhooks.guard import Resolver, UnsafeURLError, check_url
from webhooks.outbox import DISPATCH_VIEW_NAME, MESSAGE_STATES, Clock, Outbox, to_seconds, utc_now
from webhooks.signing import generate_secret

logger = logging.getLogger(__name__)

# Seconds a write waits for the dispatch view before it returns anyway.
DISPATCH_WAIT_SECONDS = 2.0


def known_event_types() -> list[str]:
    """Return every event type the hub records, such as ``ticket.escalated``, sorted."""
    names: set[str] = set()
    for aggregate_class, kind in AGGREGATE_KINDS.items():
        members = {
            name: member for name, member in vars(aggregate_class).items()
            if isinstance(member, type) and issubclass(member, Aggregate.Event) and name != "Event"
        }
        named_creation = any(
            issubclass(member, Aggregate.Created) and name != "Created" for name, member in members.items()
        )
        for name in members:
            if name == "Created" and named_creation:
                # The library adds a generic Created class; Ticket.Opened and the like replace it.
                continue
            type_name = f"{kind}.{snake_case(name)}"
            names.add(SPECIAL_TYPES.get(type_name, type_name))
    return sorted(names)


def check_known_event_types(event_types: list[str]) -> None:
    known = known_event_types()
    kinds = {name.split(".", 1)[0] for name in known}
    for pattern in event_types:
        if pattern == "*":
            continue
        kind, _, name = pattern.partition(".")
        if name == "*" and kind in kinds:
            continue
        if pattern in known:
            continue
        msg = f"event type {pattern!r} is not recorded by the hub; use \"*\", a kind such as \"ticket.*\", or one of {', '.join(known)}"
        raise InvalidValueError("event_types", msg)


class WebhookService:
    """Manages webhook endpoints and reads their deliveries."""

    def __init__(
        self,
        app: Any,
        outbox: Outbox,
        secret_box: SecretBox,
        *,
        allow_private: bool,
        clock: Clock = utc_now,
        resolve: Resolver | None = None,
        wake: Callable[[], object] | None = None,
    ) -> None:
        self.app = app
        self.outbox = outbox
        self.secret_box = secret_box
        self.allow_private = allow_private
        self.clock = clock
        self.resolve = resolve
        self.wake = wake

    # Changing endpoints.

    def create_endpoint(
        self, ctx: Context, *, url: str, event_types: list[str], description: str | None = None,
        endpoint_id: UUID | None = None,
    ) -> tuple[WebhookEndpoint, str]:
        """Subscribe a URL; return the endpoint and its secret, which is shown only now."""
        event_types = normalize_event_types(event_types)
        check_known_event_types(event_types)
        self._check_url(url)
        secret = generate_secret()
        endpoint = WebhookEndpoint.create(
            ctx, endpoint_id=endpoint_id or uuid4(), url=url, event_types=event_types,
            description=description, secret_ciphertext=self.secret_box.encrypt(secret),
        )
        self._save(endpoint)
        logger.info("Webhook endpoint %s created for %s", endpoint.id, ", ".join(event_types))
        return endpoint, secret

    def update_endpoint(
        self,
        ctx: Context,
        endpoint_id: UUID,
        *,
        url: str | None = None,
        event_types: list[str] | None = None,
        description: str | None = None,
        enabled: bool | None = None,
        expected_version: int | None = None,
    ) -> WebhookEndpoint:
        """Change settings and enable or disable, in one transaction; unchanged values record nothing."""
        if event_types is not None:
            event_types = normalize_event_types(event_types)
            check_known_event_types(event_types)
        if url is not None:
            self._check_url(url)
        endpoint = self.get_endpoint(endpoint_id)
        if expected_version is not None and endpoint.version != expected_version:
            raise VersionMismatchError(endpoint_id, expected_version, endpoint.version)
        endpoint.update(ctx, url=url, event_types=event_types, description=description)
        if enabled is False and endpoint.enabled:
            endpoint.disable(ctx, reason=f"disabled by {ctx.actor_kind} {ctx.actor_id}")
        elif enabled is True and not endpoint.enabled:
            endpoint.enable(ctx)
        self._save(endpoint)
        return endpoint

    def rotate_secret(self, ctx: Context, endpoint_id: UUID) -> tuple[WebhookEndpoint, str]:
        """Replace the secret; return the endpoint and the new secret, shown only now."""
        endpoint = self.get_endpoint(endpoint_id)
        secret = generate_secret()
        endpoint.rotate_secret(ctx, secret_ciphertext=self.secret_box.encrypt(secret))
        self._save(endpoint)
        logger.info(
            "Webhook endpoint %s: secret rotated; the previous one signs until %s",
            endpoint.id, endpoint.previous_secret_expires_at.isoformat(),
        )
        return endpoint, secret

    def delete_endpoint(self, ctx: Context, endpoint_id: UUID) -> WebhookEndpoint:
        endpoint = self.get_endpoint(endpoint_id)
        endpoint.delete(ctx)
        self._save(endpoint)
        logger.info("Webhook endpoint %s deleted", endpoint.id)
        return endpoint

    def _check_url(self, url: str) -> None:
        if not isinstance(url, str):
            raise InvalidValueError("url", "url must be a string such as https://hooks.example.com/events")
        try:
            check_url(url, self.allow_private, resolve=self.resolve)
        except UnsafeURLError as error:
            raise InvalidValueError("url", str(error)) from None

    def _save(self, endpoint: WebhookEndpoint) -> None:
        try:
            recordings = self.app.save(endpoint)
        except IntegrityError:
            msg = f"webhook endpoint {endpoint.id} was changed by another request at the same time; read it again and retry"
            raise ConcurrentWriteError(msg) from None
        if recordings:
            self.wait_for_dispatch(recordings[-1].notification.id)

    def wait_for_dispatch(self, position: int, timeout: float = DISPATCH_WAIT_SECONDS) -> bool:
        """Wait until the dispatch view has applied ``position``; return False if it did not in time.

        The view may run in another process (``hub webhooks work``), so this
        polls its stored position.
        """
        if self.wake is not None:
            self.wake()
        deadline = time.monotonic() + timeout
        while self.outbox.dispatch_position() < position:
            if time.monotonic() >= deadline:
                logger.warning(
                    "The %s view has not reached position %d after %.1f s; is a webhook worker running?",
                    DISPATCH_VIEW_NAME, position, timeout,
                )
                return False
            time.sleep(0.02)
        return True

    # Reading.

    def get_endpoint(self, endpoint_id: UUID) -> WebhookEndpoint:
        """Return an endpoint; a deleted one is not found."""
        endpoint = self.app.get(WebhookEndpoint, endpoint_id)
        if endpoint.deleted:
            raise NotFoundError("endpoint", endpoint_id, f"webhook endpoint {endpoint_id} was deleted")
        return endpoint

    def list_endpoints(self) -> list[dict[str, Any]]:
        """Return the endpoints that are not deleted, oldest first, as the dispatch view has them."""
        return self.outbox.endpoint_rows()

    def deliveries(
        self, endpoint_id: UUID, *, limit: int = 50, offset: int = 0, state: str | None = None
    ) -> list[dict[str, Any]]:
        self.get_endpoint(endpoint_id)
        if state is not None and state not in MESSAGE_STATES:
            msg = f"state {state!r} is invalid; use one of {', '.join(MESSAGE_STATES)}"
            raise InvalidValueError("state", msg)
        return self.outbox.deliveries(str(endpoint_id), limit=limit, offset=offset, state=state)

    # Sending outside the stream.

    def replay(self, endpoint_id: UUID, since: datetime, until: datetime) -> dict[str, int]:
        """Deliver again every event recorded between ``since`` and ``until`` (inclusive) that the endpoint selects."""
        require_aware("since", since)
        require_aware("until", until)
        if until < since:
            raise InvalidValueError("until", f"until {until.isoformat()} is before since {since.isoformat()}")
        endpoint = self._require_enabled(endpoint_id, "replay events to")
        counts = self.outbox.replay(
            str(endpoint_id), endpoint.event_types, since, until, to_seconds(self.clock())
        )
        if self.wake is not None:
            self.wake()
        return counts

    def send_test(self, endpoint_id: UUID) -> str:
        """Queue an ``endpoint.test`` message for one endpoint and return its message id."""
        self._require_enabled(endpoint_id, "send a test message to")
        message_id = self.outbox.queue_test(str(endpoint_id), to_seconds(self.clock()))
        if self.wake is not None:
            self.wake()
        return message_id

    def _require_enabled(self, endpoint_id: UUID, action: str) -> WebhookEndpoint:
        endpoint = self.get_endpoint(endpoint_id)
        if not endpoint.enabled:
            msg = f"webhook endpoint {endpoint_id} is disabled ({endpoint.disabled_reason}); enable it to {action} it"
            raise StateConflictError(endpoint_id, "disabled", msg)
        return endpoint
