"""Freshdesk API v2 client: ticket sync by `updated_since`, conversations, updates.

Behaviour relied on, from Freshdesk's API v2 documentation and its support forum:

* `GET /api/v2/tickets` without `updated_since` returns only the tickets of the
  last 30 days, so every request here sends it.
* `order_by=updated_at&order_type=asc` sorts the oldest change first.
* `per_page` is at most 100, and the list stops at page 300 (30,000 tickets). A
  sync larger than that restarts the window at the last `updated_at` it saw.
* Basic auth takes the API key as user name and "X" as password.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator, Mapping
from datetime import datetime, timezone
from typing import Any, NamedTuple

from connectors.http import ConnectorClient, PaginationLoopError

logger = logging.getLogger(__name__)

TICKETS_PATH = "/api/v2/tickets"
MAX_PER_PAGE = 100
MAX_PAGES = 300

# Numeric codes of the ticket fields, mapped to the hub's domain terms.
# Codes 6 and up are statuses that each account defines, so they have no fixed term.
STATUS_TERMS = {2: "open", 3: "pending", 4: "resolved", 5: "closed"}
PRIORITY_TERMS = {1: "low", 2: "medium", 3: "high", 4: "critical"}
# 1 Email, 2 Portal, 3 Phone, 7 Chat, 9 Feedback widget, 10 Outbound email.
SOURCE_CHANNELS = {1: "email", 2: "web", 3: "phone", 7: "chat", 9: "web", 10: "email"}

DOMAIN_STATUSES = ("new", "open", "pending", "on_hold", "resolved", "closed")


class FreshdeskTicketPage(NamedTuple):
    """One page of changed tickets.

    `checkpoint` is the latest `updated_at` yielded so far. A later sync that
    passes it as `updated_since` misses nothing, but receives the tickets changed
    at that second again.
    """

    tickets: list[dict[str, Any]]
    checkpoint: datetime


class FreshdeskClient(ConnectorClient):
    """Client for one Freshdesk account, such as https://example.freshdesk.com.

    `per_page` and `max_pages` default to Freshdesk's limits. Other keyword
    arguments are those of `ConnectorClient`.
    """

    vendor = "Freshdesk"
    credential_hint = "the API key of this connection"
    permission_hint = "that the agent who owns the API key has access to these tickets"

    def __init__(
        self,
        base_url: str,
        api_key: str,
        *,
        per_page: int = MAX_PER_PAGE,
        max_pages: int = MAX_PAGES,
        **kwargs: Any,
    ) -> None:
        if not api_key:
            msg = "the Freshdesk API key is empty; copy it from the agent's profile settings"
            raise ValueError(msg)
        if not 1 <= per_page <= MAX_PER_PAGE:
            msg = f"per_page {per_page} is invalid; Freshdesk accepts 1 to {MAX_PER_PAGE}"
            raise ValueError(msg)
        if max_pages < 1:
            msg = f"max_pages {max_pages} is invalid; pass at least 1"
            raise ValueError(msg)
        super().__init__(base_url, auth=(api_key, "X"), **kwargs)
        self.per_page = per_page
        self.max_pages = max_pages

    def iter_ticket_pages(self, updated_since: datetime) -> Iterator[FreshdeskTicketPage]:
        """Yield the tickets changed at or after `updated_since`, oldest change first.

        When the page cap is reached, the next window starts at the last
        `updated_at` seen. Tickets at that second which were already yielded are
        dropped from the new window, so each ticket version is yielded once. A
        ticket changed again during the sync comes back later with its new
        `updated_at`, and that copy is yielded too.
        """
        # Freshdesk takes whole seconds. Flooring the start keeps every ticket.
        window_start = _to_utc(updated_since, "updated_since").replace(microsecond=0)
        yielded_at_start: set[int] = set()
        while True:
            last_updated_at: datetime | None = None
            ids_at_last: set[int] = set()
            for page in range(1, self.max_pages + 1):
                records = self._get_ticket_page(window_start, page)
                fresh: list[dict[str, Any]] = []
                for record in records:
                    ticket_id, updated_at = self._ticket_key(record)
                    if updated_at == window_start and ticket_id in yielded_at_start:
                        continue
                    fresh.append(record)
                    if last_updated_at is None or updated_at > last_updated_at:
                        last_updated_at = updated_at
                        ids_at_last = {ticket_id}
                    elif updated_at == last_updated_at:
                        ids_at_last.add(ticket_id)
                if fresh and last_updated_at is not None:
                    yield FreshdeskTicketPage(fresh, last_updated_at)
                if len(records) < self.per_page:
                    return

            # The page cap was reached with a full last page: restart the window.
            if last_updated_at is None or last_updated_at == window_start:
                limit = self.per_page * self.max_pages
                msg = (
                    f"More than {limit} Freshdesk tickets of connection {self.connection_label} "
                    f"share updated_at {_format_time(window_start)}, so updated_since cannot page "
                    "past them; sync those tickets with the filter endpoint instead."
                )
                raise PaginationLoopError(msg, connection_id=self.connection_id)
            # NOTE: Freshdesk does not document whether updated_since is inclusive.
            # The restart assumes it is; if not, tickets that share the last second
            # and lie beyond the cap would be skipped.
            yielded_at_start = ids_at_last
            logger.info(
                "Freshdesk page cap of %d pages reached for connection %s; restarting at updated_since=%s",
                self.max_pages,
                self.connection_id,
                _format_time(last_updated_at),
            )
            window_start = last_updated_at

    def list_conversations(self, ticket_id: int) -> list[dict[str, Any]]:
        """Return every reply and note of one ticket, following pages."""
        path = f"{TICKETS_PATH}/{int(ticket_id)}/conversations"
        conversations: list[dict[str, Any]] = []
        page = 1
        while True:
            records = self.get_json(path, params={"per_page": self.per_page, "page": page})
            if not isinstance(records, list):
                raise self.unexpected_payload(path, "the body is not a JSON array of conversations")
            conversations.extend(records)
            if len(records) < self.per_page:
                return conversations
            page += 1

    def update_ticket(self, ticket_id: int, fields: Mapping[str, Any]) -> dict[str, Any]:
        """Set ticket fields (numeric codes, as Freshdesk expects) and return the ticket."""
        if not fields:
            msg = f"fields for Freshdesk ticket {ticket_id} are empty; pass at least one field to set"
            raise ValueError(msg)
        path = f"{TICKETS_PATH}/{int(ticket_id)}"
        ticket = self.send_json("PUT", path, dict(fields))
        if not isinstance(ticket, dict):
            raise self.unexpected_payload(path, "the body is not a ticket object", method="PUT")
        return ticket

    def reply(self, ticket_id: int, body: str) -> dict[str, Any]:
        """Post a public reply (HTML `body`) and return the created conversation.

        The request is not repeated after a failure that Freshdesk may have acted on.
        """
        if not body or not body.strip():
            msg = f"the reply body for Freshdesk ticket {ticket_id} is empty; pass the text to send"
            raise ValueError(msg)
        path = f"{TICKETS_PATH}/{int(ticket_id)}/reply"
        conversation = self.send_json("POST", path, {"body": body})
        if not isinstance(conversation, dict):
            raise self.unexpected_payload(path, "the body is not a conversation object", method="POST")
        return conversation

    def _get_ticket_page(self, updated_since: datetime, page: int) -> list[dict[str, Any]]:
        params = {
            "updated_since": _format_time(updated_since),
            "order_by": "updated_at",
            "order_type": "asc",
            "per_page": self.per_page,
            "page": page,
        }
        records = self.get_json(TICKETS_PATH, params=params)
        if not isinstance(records, list):
            raise self.unexpected_payload(TICKETS_PATH, "the body is not a JSON array of tickets")
        return records

    def _ticket_key(self, record: Any) -> tuple[int, datetime]:
        if not isinstance(record, dict) or not isinstance(record.get("id"), int):
            raise self.unexpected_payload(TICKETS_PATH, "a ticket has no integer 'id'")
        try:
            updated_at = datetime.fromisoformat(record["updated_at"])
        except (KeyError, TypeError, ValueError):
            raise self.unexpected_payload(
                TICKETS_PATH, f"ticket {record['id']} has no ISO 8601 'updated_at'"
            ) from None
        return record["id"], _to_utc(updated_at, "updated_at")


def status_term(code: int, custom_statuses: Mapping[int, str] | None = None) -> str:
    """Return the domain status for a Freshdesk status code.

    Codes 6 and up are the account's own statuses: `custom_statuses` maps them,
    for example `{6: "on_hold"}` for "Waiting on third party".
    """
    if code in STATUS_TERMS:
        return STATUS_TERMS[code]
    term = (custom_statuses or {}).get(code)
    if term is None:
        msg = (
            f"Freshdesk status {code} is a custom status with no domain status; "
            f"map it with custom_statuses, for example {{{code}: 'on_hold'}}"
        )
        raise ValueError(msg)
    if term not in DOMAIN_STATUSES:
        msg = f"custom_statuses maps {code} to {term!r}; use one of {', '.join(DOMAIN_STATUSES)}"
        raise ValueError(msg)
    return term


def priority_term(code: int) -> str:
    """Return the domain priority for a Freshdesk priority code (1 Low to 4 Urgent)."""
    try:
        return PRIORITY_TERMS[code]
    except KeyError:
        msg = f"Freshdesk priority {code} is unknown; Freshdesk documents 1 to 4"
        raise ValueError(msg) from None


def source_channel(code: int) -> str:
    """Return the domain channel for a Freshdesk source code, or "other" if unlisted."""
    return SOURCE_CHANNELS.get(code, "other")


def _to_utc(moment: datetime, name: str) -> datetime:
    if moment.tzinfo is None:
        msg = f"{name} {moment.isoformat()} has no time zone; pass an aware datetime, for example in UTC"
        raise ValueError(msg)
    return moment.astimezone(timezone.utc)


def _format_time(moment: datetime) -> str:
    return moment.astimezone(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")
