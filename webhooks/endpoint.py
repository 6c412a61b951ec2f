"""The webhook endpoint: a receiver URL subscribed to some of the hub's event types.

Endpoints are event-sourced in the hub's own event store, so their history
(who subscribed, changed, rotated, disabled or deleted what, and when) is
audited like any ticket, and the delivery process can tell which endpoints
existed at each point of the event stream.

Signing secrets never appear in clear text here: commands take and events carry
the secret encrypted with ``hub.secrets.SecretBox``. The aggregate checks the
shape of its values only; checks that need I/O (resolving the URL's host) or the
catalog of event types happen in ``webhooks.service`` before a command runs.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from datetime import datetime, timedelta
from typing import Any
from uuid import UUID

from hub.domain.base import Context, ServiceAggregate
from hub.domain.errors import InvalidValueError, StateConflictError
from hub.domain.vocabulary import require_text

# After a rotation, deliveries are signed with the previous secret as well for
# this long, so receivers can switch secrets without rejecting messages.
PREVIOUS_SECRET_LIFETIME = timedelta(hours=24)

MAX_URL_LENGTH = 2048
MAX_DESCRIPTION_LENGTH = 1000
MAX_EVENT_TYPES = 100

# "*" (every event), "ticket.*" (every event of one kind) or an exact type.
_PATTERN = re.compile(r"^(\*|[a-z][a-z0-9_]*\.(\*|[a-z][a-z0-9_]*))$")

UPDATABLE_FIELDS = ("url", "event_types", "description")


def matches(patterns: Iterable[str], event_type: str) -> bool:
    """Tell whether an event type is selected by any of an endpoint's patterns."""
    kind = event_type.split(".", 1)[0]
    for pattern in patterns:
        if pattern == "*" or pattern == event_type or pattern == f"{kind}.*":
            return True
    return False


def normalize_event_types(event_types: object) -> list[str]:
    """Check the shape of an event type list and return it without duplicates, in order."""
    if not isinstance(event_types, (list, tuple)) or not event_types:
        msg = 'event_types must be a non-empty list such as ["ticket.escalated", "sla.breached"] or ["*"]'
        raise InvalidValueError("event_types", msg)
    if len(event_types) > MAX_EVENT_TYPES:
        msg = f"event_types has {len(event_types)} entries; the maximum is {MAX_EVENT_TYPES} (use \"ticket.*\" or \"*\")"
        raise InvalidValueError("event_types", msg)
    unique: list[str] = []
    for value in event_types:
        if not isinstance(value, str) or not _PATTERN.match(value):
            msg = (
                f"event type {value!r} is invalid; use an exact type such as \"ticket.escalated\", "
                "every type of a kind such as \"ticket.*\", or \"*\""
            )
            raise InvalidValueError("event_types", msg)
        if value not in unique:
            unique.append(value)
    return unique


def check_url_shape(url: object) -> str:
    """Check that a URL is a non-empty http or https string. ``webhooks.guard`` checks the host later."""
    require_text("url", url, max_length=MAX_URL_LENGTH)
    assert isinstance(url, str)
    if not url.lower().startswith(("http://", "https://")):
        raise InvalidValueError("url", "url must start with http:// or https://")
    return url


def check_description(description: object) -> str:
    if description is None:
        return ""
    if not isinstance(description, str):
        raise InvalidValueError("description", "description must be a string")
    if len(description) > MAX_DESCRIPTION_LENGTH:
        msg = f"description is {len(description)} characters long; the maximum is {MAX_DESCRIPTION_LENGTH}"
        raise InvalidValueError("description", msg)
    return description


class WebhookEndpoint(ServiceAggregate):
    """A receiver URL, the event types it subscribes to and its encrypted signing secrets."""

    class Created(ServiceAggregate.Created):
        url: str
        event_types: list[str]
        description: str
        secret_ciphertext: str

        def apply(self, endpoint: WebhookEndpoint) -> None:
            endpoint.url = self.url
            endpoint.event_types = list(self.event_types)
            endpoint.description = self.description
            endpoint.secret_ciphertext = self.secret_ciphertext
            endpoint.previous_secret_ciphertext = None
            endpoint.previous_secret_expires_at = None
            endpoint.enabled = True
            endpoint.disabled_reason = None
            endpoint.deleted = False

    class Updated(ServiceAggregate.Event):
        """Changed settings: a subset of url, event_types and description."""

        changes: dict[str, Any]

        def apply(self, endpoint: WebhookEndpoint) -> None:
            for name, value in self.changes.items():
                setattr(endpoint, name, value)

    class SecretRotated(ServiceAggregate.Event):
        secret_ciphertext: str
        previous_secret_ciphertext: str
        previous_secret_expires_at: datetime

        def apply(self, endpoint: WebhookEndpoint) -> None:
            endpoint.secret_ciphertext = self.secret_ciphertext
            endpoint.previous_secret_ciphertext = self.previous_secret_ciphertext
            endpoint.previous_secret_expires_at = self.previous_secret_expires_at

    class Disabled(ServiceAggregate.Event):
        reason: str

        def apply(self, endpoint: WebhookEndpoint) -> None:
            endpoint.enabled = False
            endpoint.disabled_reason = self.reason

    class Enabled(ServiceAggregate.Event):
        def apply(self, endpoint: WebhookEndpoint) -> None:
            endpoint.enabled = True
            endpoint.disabled_reason = None

    class Deleted(ServiceAggregate.Event):
        def apply(self, endpoint: WebhookEndpoint) -> None:
            endpoint.deleted = True
            endpoint.enabled = False

    @classmethod
    def create(
        cls,
        ctx: Context,
        *,
        endpoint_id: UUID,
        url: str,
        event_types: list[str],
        secret_ciphertext: str,
        description: str | None = None,
    ) -> WebhookEndpoint:
        return cls._create(
            cls.Created,
            id=endpoint_id,
            **ctx.event_fields(),
            url=check_url_shape(url),
            event_types=normalize_event_types(event_types),
            description=check_description(description),
            secret_ciphertext=_require_ciphertext(secret_ciphertext),
        )

    def update(
        self,
        ctx: Context,
        *,
        url: str | None = None,
        event_types: list[str] | None = None,
        description: str | None = None,
    ) -> None:
        """Record the settings that differ from the current ones; record nothing when none do."""
        self._check_not_deleted("update")
        proposed: dict[str, Any] = {}
        if url is not None:
            proposed["url"] = check_url_shape(url)
        if event_types is not None:
            proposed["event_types"] = normalize_event_types(event_types)
        if description is not None:
            proposed["description"] = check_description(description)
        changes = {name: value for name, value in proposed.items() if getattr(self, name) != value}
        if changes:
            self._record(self.Updated, ctx, changes=changes)

    def rotate_secret(self, ctx: Context, *, secret_ciphertext: str) -> None:
        """Replace the secret; the previous one stays valid for PREVIOUS_SECRET_LIFETIME.

        Only the secret being replaced is kept, so after two rotations within
        the lifetime the oldest secret stops being used at once.
        """
        self._check_not_deleted("rotate the secret of")
        fields = ctx.event_fields()
        self.trigger_event(
            self.SecretRotated,
            **fields,
            secret_ciphertext=_require_ciphertext(secret_ciphertext),
            previous_secret_ciphertext=self.secret_ciphertext,
            previous_secret_expires_at=fields["occurred_at"] + PREVIOUS_SECRET_LIFETIME,
        )

    def disable(self, ctx: Context, *, reason: str) -> None:
        self._check_not_deleted("disable")
        require_text("reason", reason, max_length=2000)
        if not self.enabled:
            msg = f"webhook endpoint {self.id} is already disabled ({self.disabled_reason})"
            raise StateConflictError(self.id, "disabled", msg)
        self._record(self.Disabled, ctx, reason=reason)

    def enable(self, ctx: Context) -> None:
        self._check_not_deleted("enable")
        if self.enabled:
            msg = f"webhook endpoint {self.id} is already enabled"
            raise StateConflictError(self.id, "enabled", msg)
        self._record(self.Enabled, ctx)

    def delete(self, ctx: Context) -> None:
        self._check_not_deleted("delete")
        self._record(self.Deleted, ctx)

    def secret_ciphertexts(self, at: datetime) -> list[str]:
        """Return the encrypted secrets to sign with at ``at``: the current one, then a still-valid previous one."""
        secrets = [self.secret_ciphertext]
        expires_at = self.previous_secret_expires_at
        if self.previous_secret_ciphertext and expires_at is not None and at < expires_at:
            secrets.append(self.previous_secret_ciphertext)
        return secrets

    def state(self) -> dict[str, Any]:
        """Return the endpoint's settings as plain values, without any secret."""
        return {
            "id": str(self.id),
            "version": self.version,
            "url": self.url,
            "event_types": list(self.event_types),
            "description": self.description,
            "enabled": self.enabled,
            "disabled_reason": self.disabled_reason,
            "deleted": self.deleted,
            "previous_secret_expires_at": self.previous_secret_expires_at,
            "created_at": self.created_at,
            "updated_at": self.updated_at,
        }

    def _check_not_deleted(self, action: str) -> None:
        if self.deleted:
            msg = f"webhook endpoint {self.id} is deleted; cannot {action} it"
            raise StateConflictError(self.id, "deleted", msg)


def _require_ciphertext(secret_ciphertext: object) -> str:
    if not isinstance(secret_ciphertext, str) or not secret_ciphertext:
        raise InvalidValueError("secret", "the encrypted secret is missing")
    if secret_ciphertext.startswith("whsec_"):
        # A clear-text secret must never reach the event store.
        raise InvalidValueError("secret", "the secret must be encrypted with SecretBox before it is recorded")
    return secret_ciphertext
