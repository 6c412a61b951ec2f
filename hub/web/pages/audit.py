"""The ticket audit view: every event of a ticket, and its state at any point of that timeline.

The timeline is ``HubApplication.history`` and a state is
``HubApplication.get(Ticket, id, version=N)`` or ``get_as_of``, the reads
behind the API's ``/api/v1/tickets/<id>/events`` and ``/api/v1/tickets/<id>``.
"""

from __future__ import annotations

import json
import logging
from datetime import datetime, timezone
from typing import Any
from uuid import UUID

from flask import Blueprint, redirect, render_template, request, url_for

from hub.application import NotFoundError
from hub.domain import Ticket, external_uuid
from hub.events import to_plain
from hub.web.pages.data import hub_application
from hub.web.pages.session import viewer_required

logger = logging.getLogger(__name__)

# Sources tried for a bare external id such as INC0000045; "source:id" selects one explicitly.
SEARCH_SOURCES = ("servicenow", "zendesk", "freshdesk")


def add_routes(blueprint: Blueprint) -> None:
    blueprint.add_url_rule("/tickets", "ticket_search", viewer_required(ticket_search))
    blueprint.add_url_rule("/tickets/<ticket_id>", "ticket", viewer_required(ticket_page))


def ticket_exists(ticket_id: UUID) -> bool:
    try:
        hub_application().get(Ticket, ticket_id)
    except NotFoundError:
        return False
    return True


def find_ticket(query: str) -> UUID | None:
    """Return the ticket a search names: a hub ticket id, ``source:external id`` or a bare external id."""
    try:
        candidate = UUID(query)
    except ValueError:
        pass
    else:
        return candidate if ticket_exists(candidate) else None

    source, separator, external_id = query.partition(":")
    if separator and source and external_id:
        candidates = [external_uuid("ticket", source.strip().lower(), external_id.strip())]
    else:
        candidates = [external_uuid("ticket", name, query) for name in SEARCH_SOURCES]
    for candidate in candidates:
        if ticket_exists(candidate):
            return candidate
    return None


def ticket_search() -> Any:
    query = request.args.get("q", "").strip()
    if not query:
        return render_template("ticket_search.html", query="", error=None)
    if len(query) > 200:
        return render_template(
            "ticket_search.html", query=query[:200], error="The search is longer than 200 characters.",
        ), 400
    found = find_ticket(query)
    if found is None:
        message = (
            f"No ticket matches {query!r}. Search by hub ticket id, by source and id "
            "(servicenow:INC0000045), or by an external id alone."
        )
        return render_template("ticket_search.html", query=query, error=message), 404
    return redirect(url_for("pages.ticket", ticket_id=str(found)), code=303)


def parse_as_of(text: str) -> datetime:
    """Read a time from the form: ISO 8601, with an offset or in UTC when it has none."""
    moment = datetime.fromisoformat(text)
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=timezone.utc)
    return moment


def changed_fields(before: dict[str, Any] | None, after: dict[str, Any]) -> set[str]:
    """Return the state fields whose value differs between two versions of a ticket."""
    ignored = {"version", "updated_at", "recorded_at"}
    if before is None:
        return {name for name, value in after.items() if value not in (None, [], {}, "") and name not in ignored}
    return {name for name in after if name not in ignored and before.get(name) != after[name]}


def ticket_page(ticket_id: str) -> Any:
    try:
        aggregate_id = UUID(ticket_id)
    except ValueError:
        return render_template(
            "error.html", status=404, title="Ticket not found",
            message=f"{ticket_id!r} is not a ticket id; search by id or external id on the Tickets page.",
        ), 404

    application = hub_application()
    try:
        timeline = application.history(Ticket, aggregate_id)
    except NotFoundError:
        return render_template(
            "error.html", status=404, title="Ticket not found", message=f"No ticket has the id {ticket_id}.",
        ), 404
    latest = timeline[-1]["version"]

    # The point of the timeline to show: a version, an instant, or the latest version.
    error = None
    status = 200
    as_of_text = request.args.get("at", "").strip()
    version_text = request.args.get("version", "").strip()
    version = latest
    if as_of_text:
        try:
            version = application.get_as_of(Ticket, aggregate_id, parse_as_of(as_of_text)).version
        except ValueError:
            error = f"The time {as_of_text!r} is invalid; use a time such as 2016-03-01T09:30 (UTC)."
            status = 400
        except NotFoundError:
            error = f"The ticket did not exist yet at {as_of_text}; showing its first version."
            version = timeline[0]["version"]
    elif version_text:
        if version_text.isascii() and version_text.isdigit() and timeline[0]["version"] <= int(version_text) <= latest:
            version = int(version_text)
        else:
            error = f"Version {version_text!r} is invalid; pick a version from 1 to {latest}."
            status = 400

    state = to_plain(application.get(Ticket, aggregate_id, version=version).state())
    previous = to_plain(application.get(Ticket, aggregate_id, version=version - 1).state()) if version > 1 else None
    for event in timeline:
        event["data_json"] = json.dumps(event["data"], indent=1, sort_keys=True, default=str)
    return render_template(
        "ticket.html",
        ticket_id=str(aggregate_id),
        timeline=timeline,
        version=version,
        latest=latest,
        state=state,
        changed=changed_fields(previous, state),
        as_of=as_of_text,
        error=error,
    ), status
