"""Zendesk Support API client: incremental ticket export, related records, updates.

Endpoints and behaviour follow Zendesk's API reference (developer.zendesk.com):
the cursor-based incremental ticket export, cursor pagination (`page[size]`,
`page[after]`, `meta.has_more`) on list endpoints, and webhook signatures.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import logging
from collections.abc import Iterator, Mapping
from typing import Any, NamedTuple

import requests.auth

from connectors.http import BearerAuth, ConnectorClient, PaginationGuard

logger = logging.getLogger(__name__)

INCREMENTAL_TICKETS_PATH = "/api/v2/incremental/tickets/cursor.json"

# The incremental export leaves out changes made in the minute before a request,
# so a later start_time cannot return anything.
MIN_START_TIME_AGE_SECONDS = 60

# Records per cursor page. Zendesk documents 100 as the maximum on most endpoints.
CURSOR_PAGE_SIZE = 100

WEBHOOK_SIGNATURE_HEADER = "X-Zendesk-Webhook-Signature"
WEBHOOK_TIMESTAMP_HEADER = "X-Zendesk-Webhook-Signature-Timestamp"


class ZendeskTicketPage(NamedTuple):
    """One page of the incremental ticket export.

    `after_cursor` is where the next export resumes; store it once the page is
    processed. `end_of_stream` is true on the last page available now.
    """

    tickets: list[dict[str, Any]]
    after_cursor: str | None
    end_of_stream: bool


class ZendeskClient(ConnectorClient):
    """Client for one Zendesk account, such as https://example.zendesk.com.

    `credentials` contains either `email` and `api_token` (basic auth as
    `email/token:api_token`) or `oauth_token` (bearer auth). Other keyword
    arguments are those of `ConnectorClient`.
    """

    vendor = "Zendesk"
    credential_hint = "the email and API token (or OAuth token) of this connection"
    permission_hint = "that the Zendesk user is an agent or admin with access to this data, and the OAuth scopes"

    def __init__(self, base_url: str, credentials: Mapping[str, str], **kwargs: Any) -> None:
        super().__init__(base_url, auth=_zendesk_auth(credentials), **kwargs)

    def iter_ticket_pages(
        self,
        cursor: str | None = None,
        start_time: int | None = None,
        *,
        per_page: int | None = None,
    ) -> Iterator[ZendeskTicketPage]:
        """Yield the pages of the incremental ticket export until `end_of_stream`.

        Resume from `cursor` (an `after_cursor` stored earlier), or, for a first
        export, start at `start_time` (Unix seconds). `start_time` is sent only
        when `cursor` is None, and is moved back to one minute before now if it
        is later. A ticket changed while the export runs can come back on a
        later page, and each copy is yielded.
        """
        params: dict[str, Any] = {}
        if cursor is not None:
            params["cursor"] = cursor
        elif start_time is None:
            msg = "start_time is required when no cursor is given; pass a Unix time (0 exports every ticket)"
            raise ValueError(msg)
        else:
            params["start_time"] = self._clamp_start_time(start_time)
        if per_page is not None:
            params["per_page"] = per_page

        guard = PaginationGuard(self, INCREMENTAL_TICKETS_PATH, start=cursor)
        while True:
            payload = self.get_json(INCREMENTAL_TICKETS_PATH, params=params)
            tickets = _list_field(self, payload, "tickets", INCREMENTAL_TICKETS_PATH)
            after_cursor = payload.get("after_cursor")
            end_of_stream = bool(payload.get("end_of_stream"))
            if not end_of_stream:
                if not after_cursor:
                    raise self.unexpected_payload(
                        INCREMENTAL_TICKETS_PATH, "end_of_stream is false but after_cursor is missing"
                    )
                guard.check(after_cursor)
            logger.debug(
                "Zendesk export page for connection %s: %d tickets, end_of_stream=%s",
                self.connection_id,
                len(tickets),
                end_of_stream,
            )
            yield ZendeskTicketPage(tickets, after_cursor, end_of_stream)
            if end_of_stream:
                return
            params = {"cursor": after_cursor}
            if per_page is not None:
                params["per_page"] = per_page

    def iter_ticket_audits(self, ticket_id: int) -> Iterator[dict[str, Any]]:
        """Yield every audit of one ticket, following cursor pages."""
        return self._iter_cursor_items(f"/api/v2/tickets/{int(ticket_id)}/audits.json", "audits")

    def iter_users(self) -> Iterator[dict[str, Any]]:
        """Yield every user of the account, following cursor pages."""
        return self._iter_cursor_items("/api/v2/users.json", "users")

    def iter_organizations(self) -> Iterator[dict[str, Any]]:
        """Yield every organization of the account, following cursor pages."""
        return self._iter_cursor_items("/api/v2/organizations.json", "organizations")

    def list_satisfaction_ratings(
        self,
        *,
        start_time: int | None = None,
        end_time: int | None = None,
        score: str | None = None,
    ) -> list[dict[str, Any]]:
        """Return the satisfaction ratings created in [start_time, end_time] (Unix seconds).

        `score` filters as Zendesk documents it, for example "received" or "bad".
        """
        params: dict[str, Any] = {}
        if start_time is not None:
            params["start_time"] = start_time
        if end_time is not None:
            params["end_time"] = end_time
        if score is not None:
            params["score"] = score
        return list(self._iter_cursor_items("/api/v2/satisfaction_ratings.json", "satisfaction_ratings", params))

    def list_sla_policies(self) -> list[dict[str, Any]]:
        """Return the account's SLA policies with their `policy_metrics`."""
        path = "/api/v2/slas/policies.json"
        payload = self.get_json(path)
        return _list_field(self, payload, "sla_policies", path)

    def update_ticket(self, ticket_id: int, fields: Mapping[str, Any]) -> dict[str, Any]:
        """Set ticket fields and return Zendesk's response (`ticket` and `audit`).

        Setting the same fields again leaves the ticket unchanged, so the request
        is retried under the usual policy. Add comments with `add_comment`.
        """
        if not fields:
            msg = f"fields for Zendesk ticket {ticket_id} are empty; pass at least one field to set"
            raise ValueError(msg)
        if "comment" in fields:
            msg = "fields contains 'comment'; use add_comment so that a comment is never posted twice"
            raise ValueError(msg)
        return self._put_ticket(ticket_id, dict(fields), idempotent=True)

    def add_comment(self, ticket_id: int, body: str, public: bool) -> dict[str, Any]:
        """Add a public reply or an internal note and return `ticket` and `audit`.

        The request is not repeated after a failure that Zendesk may have acted on.
        """
        if not body or not body.strip():
            msg = f"the comment body for Zendesk ticket {ticket_id} is empty; pass the text to post"
            raise ValueError(msg)
        comment = {"comment": {"body": body, "public": public}}
        return self._put_ticket(ticket_id, comment, idempotent=False)

    def _put_ticket(self, ticket_id: int, ticket: dict[str, Any], *, idempotent: bool) -> dict[str, Any]:
        path = f"/api/v2/tickets/{int(ticket_id)}.json"
        payload = self.send_json("PUT", path, {"ticket": ticket}, idempotent=idempotent)
        if not isinstance(payload, dict) or not isinstance(payload.get("ticket"), dict):
            raise self.unexpected_payload(path, "the 'ticket' object is missing", method="PUT")
        return payload

    def _iter_cursor_items(
        self,
        path: str,
        key: str,
        params: Mapping[str, Any] | None = None,
    ) -> Iterator[dict[str, Any]]:
        query: dict[str, Any] = dict(params or {})
        query["page[size]"] = CURSOR_PAGE_SIZE
        guard = PaginationGuard(self, path)
        while True:
            payload = self.get_json(path, params=query)
            yield from _list_field(self, payload, key, path)
            meta = payload.get("meta")
            if meta is None and payload.get("next_page"):
                # Zendesk falls back to offset pagination where cursors are not
                # supported. Stopping here would silently drop the later pages.
                raise self.unexpected_payload(path, "it returned offset pagination (next_page) instead of meta")
            if not meta or not meta.get("has_more"):
                return
            after_cursor = meta.get("after_cursor")
            if not after_cursor:
                raise self.unexpected_payload(path, "meta.has_more is true but meta.after_cursor is missing")
            guard.check(after_cursor)
            query["page[after]"] = after_cursor

    def _clamp_start_time(self, start_time: int) -> int:
        if start_time < 0:
            msg = f"start_time {start_time} is negative; pass Unix seconds, 0 or later"
            raise ValueError(msg)
        latest = int(self.clock.now().timestamp()) - MIN_START_TIME_AGE_SECONDS
        if start_time > latest:
            logger.info(
                "Zendesk start_time %d for connection %s is less than %d s old; using %d",
                start_time,
                self.connection_id,
                MIN_START_TIME_AGE_SECONDS,
                latest,
            )
            return latest
        return start_time


def verify_webhook_signature(secret: str, body: bytes, signature: str, timestamp: str) -> bool:
    """Return whether a Zendesk webhook request carries a valid signature.

    Zendesk sends `X-Zendesk-Webhook-Signature`, the base64 HMAC-SHA256 of the
    `X-Zendesk-Webhook-Signature-Timestamp` value followed by the raw body, keyed
    with the webhook's signing secret. Pass the body exactly as received. The
    comparison runs in constant time.
    """
    # NOTE: this checks authenticity only. The receiver must reject old
    # timestamps (replays), because it owns the clock and the tolerance.
    if not secret or not signature or not timestamp:
        return False
    digest = hmac.new(secret.encode("utf-8"), timestamp.encode("utf-8") + body, hashlib.sha256).digest()
    expected = base64.b64encode(digest)
    return hmac.compare_digest(expected, signature.strip().encode("utf-8"))


def _zendesk_auth(credentials: Mapping[str, str]) -> requests.auth.AuthBase:
    if credentials.get("oauth_token"):
        return BearerAuth(credentials["oauth_token"])
    email = credentials.get("email")
    api_token = credentials.get("api_token")
    if email and api_token:
        return requests.auth.HTTPBasicAuth(f"{email}/token", api_token)
    keys = ", ".join(sorted(credentials)) or "none"
    msg = (
        f"Zendesk credentials must contain 'email' and 'api_token', or 'oauth_token'; "
        f"the keys given are: {keys}"
    )
    raise ValueError(msg)


def _list_field(client: ConnectorClient, payload: Any, key: str, path: str) -> list[dict[str, Any]]:
    if not isinstance(payload, dict) or not isinstance(payload.get(key), list):
        raise client.unexpected_payload(path, f"the {key!r} list is missing")
    return payload[key]
