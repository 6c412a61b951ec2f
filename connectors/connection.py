"""The Connection aggregate: one configured instance of a vendor connector.

A connection is event-sourced like every other hub aggregate. Its stream records
when it was created and changed and when its credentials were rotated. It also
records each sync: its start, each page committed with the cursor reached, each
change pushed back to the tool, and its end with counts or with the error.

Credentials are stored encrypted with AES-GCM by `hub.secrets`, under the key in
``HUB_CIPHER_KEY``. Only the sync and the webhook check decrypt them. The aggregate,
its events, its ``repr`` and `connection_view` carry the ciphertext or the
credential field names, never the plaintext.
"""

from __future__ import annotations

import ipaddress
import json
import logging
import re
from binascii import Error as Base64Error
from datetime import datetime
from typing import Any
from urllib.parse import urlsplit
from uuid import UUID, uuid4

from cryptography.exceptions import InvalidTag
from eventsourcing.utils import get_topic

from connectors.changes import SYNCED_FIELDS
from hub.domain.base import Context, ServiceAggregate, require_aware
from hub.domain.errors import InvalidValueError, StateConflictError
from hub.events import AGGREGATE_KINDS
from hub.secrets import load_secret_box
from hub.settings import ConfigurationError, Settings

logger = logging.getLogger(__name__)

KINDS = ("zendesk", "freshdesk", "servicenow")

# Credential fields per kind: each entry of `alternatives` is one complete set.
CREDENTIAL_RULES: dict[str, dict[str, Any]] = {
    "zendesk": {
        "alternatives": (("email", "api_token"), ("oauth_token",)),
        "optional": ("webhook_secret",),
    },
    "freshdesk": {"alternatives": (("api_key",),), "optional": ()},
    "servicenow": {"alternatives": (("username", "password"), ("oauth_token",)), "optional": ()},
}

# Records that a sync reads besides the tickets, per kind. A connection reads
# all of them unless options.include lists fewer.
INCLUDES = {
    "zendesk": ("audits", "organizations", "users", "sla_policies", "satisfaction_ratings"),
    "freshdesk": ("conversations",),
    "servicenow": (),
}

CONFLICT_WINNERS = ("tool", "hub")

# Largest page each vendor accepts.
MAX_PAGE_SIZE = {"zendesk": 1000, "freshdesk": 100, "servicenow": 10_000}

# One week: a longer interval is better written as a cron expression.
MAX_EVERY_MINUTES = 7 * 24 * 60

_SOURCE_NAME = re.compile(r"^[a-z][a-z0-9_-]{0,62}$")
_LOCALHOST_NAMES = ("localhost", "localhost.localdomain")

ALLOW_PRIVATE_SETTING = "HUB_CONNECTORS_ALLOW_PRIVATE"
CIPHER_KEY_SETTING = "HUB_CIPHER_KEY"


class Connection(ServiceAggregate):
    """A configured connector instance, its sync history and its cursors."""

    class Created(ServiceAggregate.Created):
        kind: str
        name: str
        base_url: str
        credentials_encrypted: str
        credential_fields: list[str]
        schedule: dict[str, Any] | None
        options: dict[str, Any]
        outbound_position: int

        def apply(self, connection: Connection) -> None:
            connection.kind = self.kind
            connection.name = self.name
            connection.base_url = self.base_url
            connection.credentials_encrypted = self.credentials_encrypted
            connection.credential_fields = list(self.credential_fields)
            connection.schedule = self.schedule
            connection.options = dict(self.options)
            connection.outbound_position = self.outbound_position
            connection.cursor = {}
            connection.current_sync = None
            connection.last_sync = None
            connection.sync_count = 0

    class Updated(ServiceAggregate.Event):
        changes: dict[str, Any]

        def apply(self, connection: Connection) -> None:
            for name, value in self.changes.items():
                setattr(connection, name, value)

    class CredentialsRotated(ServiceAggregate.Event):
        credentials_encrypted: str
        credential_fields: list[str]

        def apply(self, connection: Connection) -> None:
            connection.credentials_encrypted = self.credentials_encrypted
            connection.credential_fields = list(self.credential_fields)

    class SyncStarted(ServiceAggregate.Event):
        sync_id: str
        trigger: str
        cursor: dict[str, Any]

        def apply(self, connection: Connection) -> None:
            connection.current_sync = {
                "sync_id": self.sync_id,
                "trigger": self.trigger,
                "started_at": self.occurred_at,
                "pages": 0,
            }
            connection.sync_count += 1

    class PageCommitted(ServiceAggregate.Event):
        sync_id: str
        stream: str
        cursor: dict[str, Any]
        counts: dict[str, int]

        def apply(self, connection: Connection) -> None:
            connection.cursor = dict(self.cursor)
            if connection.current_sync is not None:
                connection.current_sync = {
                    **connection.current_sync, "pages": connection.current_sync["pages"] + 1,
                }

    class ChangePushed(ServiceAggregate.Event):
        """One change sent to the tool; `position` is the hub event it came from."""

        sync_id: str
        position: int
        ticket_id: str
        action: str

        def apply(self, connection: Connection) -> None:
            connection.outbound_position = max(connection.outbound_position, self.position)

    class PushRejected(ServiceAggregate.Event):
        """A change the tool refused or cannot take; it is not sent again."""

        sync_id: str
        position: int
        ticket_id: str
        action: str
        error: str

        def apply(self, connection: Connection) -> None:
            connection.outbound_position = max(connection.outbound_position, self.position)

    class SyncCompleted(ServiceAggregate.Event):
        sync_id: str
        counts: dict[str, int]
        outbound_position: int

        def apply(self, connection: Connection) -> None:
            connection.outbound_position = max(connection.outbound_position, self.outbound_position)
            connection.last_sync = _finished_sync(connection, self, "completed", None)
            connection.current_sync = None

    class SyncFailed(ServiceAggregate.Event):
        sync_id: str
        error: str
        error_type: str
        counts: dict[str, int]

        def apply(self, connection: Connection) -> None:
            connection.last_sync = _finished_sync(connection, self, "failed", self.error)
            connection.current_sync = None

    # Commands.

    @classmethod
    def create(
        cls,
        ctx: Context,
        *,
        connection_id: UUID,
        kind: str,
        name: str,
        base_url: str,
        credentials_encrypted: str,
        credential_fields: list[str],
        schedule: dict[str, Any] | None,
        options: dict[str, Any],
        outbound_position: int,
    ) -> Connection:
        return cls._create(
            cls.Created,
            id=connection_id,
            **ctx.event_fields(),
            kind=kind,
            name=name,
            base_url=base_url,
            credentials_encrypted=credentials_encrypted,
            credential_fields=sorted(credential_fields),
            schedule=schedule,
            options=options,
            outbound_position=outbound_position,
        )

    def update(self, ctx: Context, changes: dict[str, Any]) -> None:
        unknown = sorted(set(changes) - {"name", "base_url", "schedule", "options"})
        if unknown:
            msg = f"{unknown[0]!r} cannot be changed; change name, base_url, schedule or options"
            raise InvalidValueError(unknown[0], msg)
        effective = {key: value for key, value in changes.items() if getattr(self, key) != value}
        if effective:
            self._record(self.Updated, ctx, changes=effective)

    def rotate_credentials(self, ctx: Context, credentials_encrypted: str, credential_fields: list[str]) -> None:
        self._record(
            self.CredentialsRotated, ctx,
            credentials_encrypted=credentials_encrypted, credential_fields=sorted(credential_fields),
        )

    def start_sync(self, ctx: Context, sync_id: str, trigger: str) -> None:
        if self.current_sync is not None:
            msg = (
                f"connection {self.id} still has sync {self.current_sync['sync_id']} open; "
                "record its end before starting another"
            )
            raise StateConflictError(self.id, "syncing", msg)
        self._record(self.SyncStarted, ctx, sync_id=sync_id, trigger=trigger, cursor=dict(self.cursor))

    def commit_page(self, ctx: Context, sync_id: str, stream: str, cursor: dict[str, Any], counts: dict[str, int]) -> None:
        self._check_syncing(sync_id)
        self._record(self.PageCommitted, ctx, sync_id=sync_id, stream=stream, cursor=cursor, counts=counts)

    def record_push(self, ctx: Context, sync_id: str, position: int, ticket_id: str, action: str) -> None:
        self._check_syncing(sync_id)
        self._record(self.ChangePushed, ctx, sync_id=sync_id, position=position, ticket_id=ticket_id, action=action)

    def reject_push(self, ctx: Context, sync_id: str, position: int, ticket_id: str, action: str, error: str) -> None:
        self._check_syncing(sync_id)
        self._record(
            self.PushRejected, ctx, sync_id=sync_id, position=position, ticket_id=ticket_id, action=action, error=error
        )

    def complete_sync(self, ctx: Context, sync_id: str, counts: dict[str, int], outbound_position: int) -> None:
        self._check_syncing(sync_id)
        self._record(self.SyncCompleted, ctx, sync_id=sync_id, counts=counts, outbound_position=outbound_position)

    def fail_sync(self, ctx: Context, sync_id: str, error: str, error_type: str, counts: dict[str, int]) -> None:
        self._check_syncing(sync_id)
        self._record(self.SyncFailed, ctx, sync_id=sync_id, error=error, error_type=error_type, counts=counts)

    def _check_syncing(self, sync_id: str) -> None:
        if self.current_sync is None or self.current_sync["sync_id"] != sync_id:
            msg = f"sync {sync_id} is not the open sync of connection {self.id}"
            raise StateConflictError(self.id, "not syncing", msg)

    # Reading.

    @property
    def source_name(self) -> str:
        """The `source.name` on every event this connection records, and on its tickets."""
        return str(self.options.get("source_name") or self.kind)

    def __repr__(self) -> str:
        # The library's repr lists every attribute; this one leaves out the credentials.
        return f"Connection(id={self.id}, kind={self.kind!r}, base_url={self.base_url!r}, version={self.version})"

    def state(self) -> dict[str, Any]:
        return {
            "id": str(self.id),
            "version": self.version,
            "kind": self.kind,
            "name": self.name,
            "base_url": self.base_url,
            "source_name": self.source_name,
            "credential_fields": list(self.credential_fields),
            "schedule": self.schedule,
            "options": dict(self.options),
            "cursor": dict(self.cursor),
            "outbound_position": self.outbound_position,
            "current_sync": self.current_sync,
            "last_sync": self.last_sync,
            "sync_count": self.sync_count,
            "created_at": self.created_at,
            "updated_at": self.updated_at,
        }


def _finished_sync(connection: Connection, event: Any, status: str, error: str | None) -> dict[str, Any]:
    started = connection.current_sync or {}
    return {
        "sync_id": event.sync_id,
        "status": status,
        "trigger": started.get("trigger"),
        "started_at": started.get("started_at"),
        "finished_at": event.occurred_at,
        "counts": dict(event.counts),
        "error": error,
    }


# The event store names event types after AGGREGATE_KINDS ("connection.sync_started")
# and HubApplication.get() looks the kind up there, so the aggregate registers itself.
AGGREGATE_KINDS.setdefault(Connection, "connection")


# Credentials at rest.


def encrypt_credentials(settings: Settings, credentials: dict[str, str]) -> str:
    """Encrypt a credentials mapping into base64 text for an event.

    Raises ConfigurationError when no key is available (`HUB_CIPHER_KEY`; see `hub.secrets`).
    """
    return load_secret_box(settings).encrypt(json.dumps(credentials, sort_keys=True))


def decrypt_credentials(settings: Settings, ciphertext: str, connection_id: object) -> dict[str, str]:
    """Decrypt the credentials of a connection; only the sync and the webhook check call this."""
    box = load_secret_box(settings)
    try:
        plaintext = box.decrypt(ciphertext)
    except (InvalidTag, ValueError, Base64Error):
        msg = (
            f"the credentials of connection {connection_id} cannot be decrypted with the current "
            f"{CIPHER_KEY_SETTING}; set the key they were stored with, or rotate the credentials"
        )
        raise ConfigurationError(msg) from None
    credentials: dict[str, str] = json.loads(plaintext)
    return credentials


# Validation of what a caller sends.


def validate_kind(kind: object) -> str:
    if kind not in KINDS:
        msg = f"kind {kind!r} is invalid; use one of {', '.join(KINDS)}"
        raise InvalidValueError("kind", msg)
    return str(kind)


def validate_name(name: object, kind: str) -> str:
    if name is None or name == "":
        return kind
    if not isinstance(name, str) or not name.strip() or len(name) > 200:
        raise InvalidValueError("name", "name must be a non-empty string of at most 200 characters")
    return name.strip()


def validate_base_url(base_url: object, allow_private: bool) -> str:
    """Check a base URL override; return it without a trailing slash.

    `https://` is required and the host must not be a loopback, private,
    link-local or otherwise non-public address literal, unless `allow_private`
    (`HUB_CONNECTORS_ALLOW_PRIVATE=1`) permits sandboxes, proxies and test servers.
    Host names are checked again when the sync connects, against the address
    they resolve to.
    """
    if not isinstance(base_url, str) or not base_url.strip():
        raise InvalidValueError("base_url", "base_url must be an absolute URL such as https://example.zendesk.com")
    text = base_url.strip()
    try:
        parts = urlsplit(text)
        host = (parts.hostname or "").lower()
    except ValueError:
        msg = f"base_url {text!r} is not a valid URL; use the form https://example.zendesk.com"
        raise InvalidValueError("base_url", msg) from None
    if parts.scheme not in ("https", "http") or not host:
        msg = f"base_url {text!r} is not an absolute http(s) URL; use the form https://example.zendesk.com"
        raise InvalidValueError("base_url", msg)
    if parts.username or parts.password:
        msg = "base_url must not contain a user name or password; put them in credentials"
        raise InvalidValueError("base_url", msg)
    if parts.query or parts.fragment:
        msg = f"base_url {text!r} has a query or fragment; pass only the scheme, host and path prefix"
        raise InvalidValueError("base_url", msg)
    if parts.scheme == "http" and not allow_private:
        msg = (
            f"base_url {text!r} uses plain http, which would send the credentials unencrypted; "
            f"use https, or set {ALLOW_PRIVATE_SETTING}=1 for a test server"
        )
        raise InvalidValueError("base_url", msg)
    reason = _private_host_reason(host)
    if reason and not allow_private:
        msg = f"base_url host {host!r} is {reason}; use the vendor's public host, or set {ALLOW_PRIVATE_SETTING}=1"
        raise InvalidValueError("base_url", msg)
    return text.rstrip("/")


def _private_host_reason(host: str) -> str | None:
    name = host.rstrip(".")
    if name in _LOCALHOST_NAMES or name.endswith(".localhost"):
        return "a loopback name"
    try:
        address = ipaddress.ip_address(name.strip("[]"))
    except ValueError:
        return None
    if not address.is_global:
        return "not a public address"
    return None


def validate_credentials(kind: str, credentials: object) -> dict[str, str]:
    """Check credential fields for `kind`; messages name fields, never values."""
    if not isinstance(credentials, dict) or not credentials:
        raise InvalidValueError("credentials", "credentials must be an object of string fields")
    rules = CREDENTIAL_RULES[kind]
    allowed = {name for group in rules["alternatives"] for name in group} | set(rules["optional"])
    for name, value in credentials.items():
        if name not in allowed:
            msg = f"credentials.{name} is not a {kind} credential; use {', '.join(sorted(allowed))}"
            raise InvalidValueError(f"credentials.{name}", msg)
        if not isinstance(value, str) or not value.strip():
            raise InvalidValueError(f"credentials.{name}", f"credentials.{name} must be a non-empty string")
    if not any(all(name in credentials for name in group) for group in rules["alternatives"]):
        choices = " or ".join("+".join(group) for group in rules["alternatives"])
        msg = f"credentials for {kind} must contain {choices}"
        raise InvalidValueError("credentials", msg)
    return {name: str(value) for name, value in credentials.items()}


def validate_schedule(schedule: object) -> dict[str, Any] | None:
    """Check a schedule: None (manual only), `{"every_minutes": N}` or a cron expression.

    Returns `{"every_minutes": N}`, `{"cron": "EXPR"}` or None.
    """
    if schedule is None:
        return None
    if isinstance(schedule, str):
        schedule = {"cron": schedule}
    if not isinstance(schedule, dict) or len(schedule) != 1:
        msg = 'schedule must be {"every_minutes": N}, a cron expression string such as "*/15 * * * *", or null'
        raise InvalidValueError("schedule", msg)
    if "every_minutes" in schedule:
        minutes = schedule["every_minutes"]
        if isinstance(minutes, bool) or not isinstance(minutes, int) or not 1 <= minutes <= MAX_EVERY_MINUTES:
            msg = f"schedule.every_minutes must be a whole number from 1 to {MAX_EVERY_MINUTES}, got {minutes!r}"
            raise InvalidValueError("schedule.every_minutes", msg)
        return {"every_minutes": minutes}
    if "cron" in schedule:
        expression = schedule["cron"]
        from apscheduler.triggers.cron import CronTrigger

        try:
            CronTrigger.from_crontab(str(expression), timezone="UTC")
        except ValueError as error:
            msg = f"schedule {expression!r} is not a valid cron expression ({error}); use five fields such as '*/15 * * * *'"
            raise InvalidValueError("schedule", msg) from None
        return {"cron": str(expression).strip()}
    msg = 'schedule must be {"every_minutes": N}, a cron expression string such as "*/15 * * * *", or null'
    raise InvalidValueError("schedule", msg)


def validate_options(kind: str, options: object) -> dict[str, Any]:
    """Check the per-connection options of `kind` and return them with defaults filled in."""
    if options is None:
        options = {}
    if not isinstance(options, dict):
        raise InvalidValueError("options", "options must be an object")
    checkers = {**_COMMON_OPTIONS, **_KIND_OPTIONS[kind]}
    cleaned: dict[str, Any] = {}
    for name, value in options.items():
        checker = checkers.get(name)
        if checker is None:
            msg = f"options.{name} is not an option of {kind} connections; use {', '.join(sorted(checkers))}"
            raise InvalidValueError(f"options.{name}", msg)
        cleaned[name] = checker(kind, value)
    cleaned.setdefault("include", list(INCLUDES[kind]))
    return cleaned


def _option_source_name(kind: str, value: object) -> str:
    if not isinstance(value, str) or not _SOURCE_NAME.match(value):
        msg = f"options.source_name {value!r} is invalid; use lowercase letters, digits, '-' and '_', starting with a letter"
        raise InvalidValueError("options.source_name", msg)
    return value


def _option_conflict_policy(kind: str, value: object) -> dict[str, str]:
    if not isinstance(value, dict):
        raise InvalidValueError("options.conflict_policy", 'options.conflict_policy must map fields to "tool" or "hub"')
    for field, winner in value.items():
        name = f"options.conflict_policy.{field}"
        if field not in SYNCED_FIELDS:
            raise InvalidValueError(name, f"{name} is not a synced field; use {', '.join(SYNCED_FIELDS)}")
        if winner not in CONFLICT_WINNERS:
            raise InvalidValueError(name, f'{name} must be "tool" or "hub", got {winner!r}')
    return dict(value)


def _option_include(kind: str, value: object) -> list[str]:
    allowed = INCLUDES[kind]
    if not isinstance(value, list) or any(item not in allowed for item in value):
        choices = ", ".join(allowed) or "nothing (use [])"
        raise InvalidValueError("options.include", f"options.include must be a list of: {choices}")
    return list(dict.fromkeys(value))


def _option_page_size(kind: str, value: object) -> int:
    limit = MAX_PAGE_SIZE[kind]
    if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= limit:
        raise InvalidValueError("options.page_size", f"options.page_size must be a whole number from 1 to {limit}")
    return value


def _option_max_pages(kind: str, value: object) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= 300:
        raise InvalidValueError("options.max_pages", "options.max_pages must be a whole number from 1 to 300")
    return value


def _option_start_time(kind: str, value: object) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        msg = "options.start_time must be Unix seconds (0 exports every ticket)"
        raise InvalidValueError("options.start_time", msg)
    return value


def _option_updated_since(kind: str, value: object) -> str:
    try:
        moment = datetime.fromisoformat(str(value).replace("Z", "+00:00"))
        require_aware("options.updated_since", moment)
    except (ValueError, InvalidValueError):
        msg = f"options.updated_since {value!r} must be an ISO 8601 time with an offset, such as 2024-01-01T00:00:00Z"
        raise InvalidValueError("options.updated_since", msg) from None
    return moment.isoformat()


def _option_custom_statuses(kind: str, value: object) -> dict[str, str]:
    statuses = ("new", "open", "pending", "on_hold", "resolved", "closed")
    if not isinstance(value, dict):
        raise InvalidValueError("options.custom_statuses", 'options.custom_statuses must map codes to statuses, like {"6": "on_hold"}')
    for code, status in value.items():
        name = f"options.custom_statuses.{code}"
        if not (str(code).isascii() and str(code).isdigit()) or int(code) < 6:
            raise InvalidValueError(name, f"{name} is not a custom status code; Freshdesk numbers them from 6")
        if status not in statuses:
            raise InvalidValueError(name, f"{name} must be one of {', '.join(statuses)}")
    return {str(code): status for code, status in value.items()}


def _id_map_option(name: str) -> Any:
    def check(kind: str, value: object) -> dict[str, str]:
        if not isinstance(value, dict) or not all(
            isinstance(key, str) and isinstance(item, (str, int)) for key, item in value.items()
        ):
            msg = f'options.{name} must map hub ids to the ids in {kind}, like {{"alice": "7001"}}'
            raise InvalidValueError(f"options.{name}", msg)
        return {key: str(item) for key, item in value.items()}

    return check


_COMMON_OPTIONS = {
    "source_name": _option_source_name,
    "conflict_policy": _option_conflict_policy,
    "include": _option_include,
    "page_size": _option_page_size,
    "agent_ids": _id_map_option("agent_ids"),
    "group_ids": _id_map_option("group_ids"),
}

_KIND_OPTIONS: dict[str, dict[str, Any]] = {
    "zendesk": {"start_time": _option_start_time},
    "freshdesk": {
        "updated_since": _option_updated_since,
        "custom_statuses": _option_custom_statuses,
        "max_pages": _option_max_pages,
    },
    "servicenow": {},
}


# Use cases on the hub's event store.


def create_connection(
    app: Any,
    ctx: Context,
    *,
    kind: object,
    base_url: object,
    credentials: object,
    schedule: object = None,
    options: object = None,
    name: object = None,
    settings: Settings,
    connection_id: UUID | None = None,
) -> Connection:
    """Validate, encrypt the credentials and record a new connection.

    Raises InvalidValueError naming the bad field, ConfigurationError when no
    key is available for the credentials, and StateConflictError when another connection
    already records events under the same source name.
    """
    checked_kind = validate_kind(kind)
    checked_url = validate_base_url(base_url, settings.connectors_allow_private)
    checked_credentials = validate_credentials(checked_kind, credentials)
    checked_schedule = validate_schedule(schedule)
    checked_options = validate_options(checked_kind, options)
    checked_name = validate_name(name, checked_kind)
    source_name = str(checked_options.get("source_name") or checked_kind)
    for other in list_connections(app):
        if other.source_name == source_name:
            msg = (
                f"connection {other.id} already records events as source {source_name!r}; "
                "set options.source_name to a distinct name for this connection"
            )
            raise StateConflictError(other.id, "source name taken", msg)

    connection = Connection.create(
        ctx,
        connection_id=connection_id or uuid4(),
        kind=checked_kind,
        name=checked_name,
        base_url=checked_url,
        credentials_encrypted=encrypt_credentials(settings, checked_credentials),
        credential_fields=list(checked_credentials),
        schedule=checked_schedule,
        options=checked_options,
        # Changes recorded before the connection existed are never pushed to the tool.
        outbound_position=app.max_position(),
    )
    app.save(connection)
    logger.info("Created %s connection %s for %s", checked_kind, connection.id, checked_url)
    return connection


def update_connection(
    app: Any, ctx: Context, connection_id: UUID, changes: dict[str, Any], *, settings: Settings
) -> Connection:
    """Change the name, base URL, schedule or options of a connection."""
    connection = get_connection(app, connection_id)
    checked: dict[str, Any] = {}
    for key, value in changes.items():
        if key == "base_url":
            checked[key] = validate_base_url(value, settings.connectors_allow_private)
        elif key == "schedule":
            checked[key] = validate_schedule(value)
        elif key == "options":
            checked[key] = validate_options(connection.kind, value)
            source_name = checked[key].get("source_name") or connection.kind
            if source_name != connection.source_name:
                msg = (
                    f"options.source_name cannot change from {connection.source_name!r}, because the "
                    "connection's tickets and events carry it; create a new connection instead"
                )
                raise InvalidValueError("options.source_name", msg)
        elif key == "name":
            checked[key] = validate_name(value, connection.kind)
        else:
            checked[key] = value
    connection.update(ctx, checked)
    app.save(connection)
    return connection


def rotate_connection_credentials(
    app: Any, ctx: Context, connection_id: UUID, credentials: object, *, settings: Settings
) -> Connection:
    """Replace the credentials of a connection with new ones, encrypted."""
    connection = get_connection(app, connection_id)
    checked = validate_credentials(connection.kind, credentials)
    connection.rotate_credentials(ctx, encrypt_credentials(settings, checked), list(checked))
    app.save(connection)
    logger.info("Rotated the credentials of connection %s", connection.id)
    return connection


def get_connection(app: Any, connection_id: UUID) -> Connection:
    connection: Connection = app.get(Connection, connection_id)
    return connection


def list_connection_ids(app: Any) -> list[UUID]:
    """Return the id of every connection, oldest first."""
    topic = get_topic(Connection.Created)
    ids: list[UUID] = []
    start = 1
    while True:
        notifications = app.recorder.select_notifications(start=start, limit=500, topics=[topic])
        ids.extend(notification.originator_id for notification in notifications)
        if len(notifications) < 500:
            return ids
        start = notifications[-1].id + 1


def list_connections(app: Any) -> list[Connection]:
    return [get_connection(app, connection_id) for connection_id in list_connection_ids(app)]


_RUN_COUNTERS = {
    Connection.PageCommitted: "pages",
    Connection.ChangePushed: "pushed",
    Connection.PushRejected: "push_rejected",
}


def sync_runs(app: Any, connection_id: UUID) -> list[dict[str, Any]]:
    """Return the syncs of a connection, newest first, from its event history."""
    get_connection(app, connection_id)
    runs: dict[str, dict[str, Any]] = {}
    for event in app.events.get(connection_id):
        if isinstance(event, Connection.SyncStarted):
            runs[event.sync_id] = {
                "sync_id": event.sync_id,
                "trigger": event.trigger,
                "status": "running",
                "started_at": event.occurred_at,
                "finished_at": None,
                "pages": 0,
                "pushed": 0,
                "push_rejected": 0,
                "counts": {},
                "error": None,
                "cursor_before": dict(event.cursor),
            }
        elif isinstance(event, (Connection.PageCommitted, Connection.ChangePushed, Connection.PushRejected)):
            run = runs.get(event.sync_id)
            if run is not None:
                run[_RUN_COUNTERS[type(event)]] += 1
        elif isinstance(event, (Connection.SyncCompleted, Connection.SyncFailed)):
            run = runs.get(event.sync_id)
            if run is not None:
                run.update(
                    status="failed" if isinstance(event, Connection.SyncFailed) else "completed",
                    finished_at=event.occurred_at,
                    counts=dict(event.counts),
                    error=getattr(event, "error", None),
                )
    return sorted(runs.values(), key=lambda run: run["started_at"], reverse=True)
