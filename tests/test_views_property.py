"""Property: after any valid event stream, applied in random pages, the views equal a from-scratch recomputation.

The reference below is deliberately simple and separate from the views. It
reads every event of the stream at the end and computes each fact with a plain
expression over one ticket's event list. Status, counts and the open escalation
come from the ticket aggregate that the domain model rebuilds.
"""

from __future__ import annotations

from datetime import datetime, timedelta, timezone
from uuid import uuid4

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from hub.application import create_application
from hub.domain import Context, Ticket
from hub.domain.errors import DomainError
from hub.settings import load_settings
from projections.escalations import EscalationView
from projections.runner import ProjectionRunner
from projections.tickets import TicketFactsView

T0 = datetime(2024, 1, 1, tzinfo=timezone.utc)
OPEN = ("new", "open", "pending", "on_hold")

COMMANDS = st.sampled_from([
    ("classify", {"category": st.sampled_from(["billing", "login"])}),
    ("prioritize", {"priority": st.sampled_from(["critical", "high", "medium", "low"])}),
    ("assign", {"group": st.sampled_from(["g1", "g2"]), "agent": st.sampled_from(["ann", "bo"])}),
    ("reply", {"body": st.just("reply")}),
    ("system_reply", {"body": st.just("auto")}),
    ("request_clarification", {"body": st.just("which?")}),
    ("receive_requester_reply", {"body": st.just("this")}),
    ("change_status", {"status": st.sampled_from(["open", "pending", "on_hold"])}),
    ("escalate", {"level": st.integers(1, 3), "reason": st.just("r"), "owner": st.sampled_from(["x", "y"]), "promised_hours": st.integers(1, 9)}),
    ("update_escalation", {"note": st.just("n"), "level": st.none() | st.integers(1, 3), "promised_hours": st.none() | st.integers(1, 9)}),
    ("resolve_escalation", {}),
    ("resolve", {}),
    ("reject_resolution", {"reason": st.just("no")}),
    ("close", {}),
    ("reopen", {}),
    ("rate_satisfaction", {"score": st.integers(1, 5)}),
    ("score_effort", {"score": st.integers(1, 7)}),
    ("record_fact", {"value": st.booleans()}),
])


@st.composite
def operations(draw):
    steps = []
    for _ in range(draw(st.integers(1, 40))):
        name, argument_strategies = draw(COMMANDS)
        arguments = {key: draw(strategy) for key, strategy in argument_strategies.items()}
        # Source times may go backwards a little, as imports of old history do.
        steps.append((draw(st.integers(0, 2)), name, arguments, draw(st.integers(-2, 6)), draw(st.booleans())))
    return steps


def run_command(ticket, name, arguments, at):
    kind = "system" if name == "system_reply" else "agent"
    ctx = Context(actor_kind=kind, actor_id="someone", occurred_at=at)
    arguments = dict(arguments)
    if "promised_hours" in arguments:
        hours = arguments.pop("promised_hours")
        arguments["promised_by"] = None if hours is None else at + timedelta(hours=hours)
    if name == "system_reply":
        name = "reply"
    if name == "record_fact":
        arguments["name"] = "made_sla"
    if name == "update_escalation" and arguments["level"] is None:
        del arguments["level"]
    getattr(ticket, name)(ctx, **arguments)


def iso(moment):
    return moment.astimezone(timezone.utc).isoformat(timespec="microseconds")


def hours(start, end):
    return (end - start).total_seconds() / 3600


def reference_facts(ticket, events):
    """Compute one ticket's facts from its events and its aggregate, each fact on its own."""
    opened = events[0].occurred_at
    replies = [
        e for e in events
        if isinstance(e, (Ticket.AgentReplied, Ticket.ClarificationRequested)) and e.actor["kind"] != "system"
    ]
    resolutions = [e for e in events if isinstance(e, Ticket.Resolved)]
    last_resolution_index = max((i for i, e in enumerate(events) if isinstance(e, Ticket.Resolved)), default=None)
    undone = last_resolution_index is not None and any(
        isinstance(e, (Ticket.Reopened, Ticket.ResolutionRejected, Ticket.StatusChanged))
        for e in events[last_resolution_index:]
    )
    final = None if last_resolution_index is None or undone else events[last_resolution_index]
    first_reply = min((e.occurred_at for e in replies), default=None)
    first_resolution = min((e.occurred_at for e in resolutions), default=None)

    # Current values come from the aggregate that the domain model rebuilt.
    state = ticket.state()
    satisfaction = state["satisfaction"]
    made_sla = state["facts"].get("made_sla")
    return {
        "opened_at": iso(opened),
        "priority": state["priority"],
        "category": state["category"],
        "group_name": state["group"],
        "agent": state["agent"],
        "status": state["status"],
        "first_response_at": iso(first_reply) if first_reply else None,
        "first_response_hours": hours(opened, first_reply) if first_reply else None,
        "public_reply_count": len(replies),
        "first_resolved_at": iso(first_resolution) if first_resolution else None,
        "first_resolution_hours": hours(opened, first_resolution) if first_resolution else None,
        "resolved_at": iso(final.occurred_at) if final else None,
        "resolution_hours": hours(opened, final.occurred_at) if final else None,
        "closed_at": iso(state["closed_at"]) if state["closed_at"] else None,
        "reopen_count": state["reopen_count"],
        "rejection_count": sum(1 for e in events if isinstance(e, Ticket.ResolutionRejected)),
        "reassignment_count": state["reassignment_count"],
        "escalation_count": state["escalation_count"],
        "csat_satisfied": None if satisfaction is None else int(satisfaction["score"] >= 4),
        "ces_score": state["effort"]["score"] if state["effort"] else None,
        "made_sla": None if made_sla is None else int(made_sla),
        "subject": state["subject"],
        # Source times may go backwards, so the latest time is not always the last event's.
        "updated_at": max(iso(e.occurred_at) for e in events),
        "version": ticket.version,
    }


COMPARED_COLUMNS = (
    "opened_at", "priority", "category", "group_name", "agent", "status", "first_response_at",
    "first_response_hours", "public_reply_count", "first_resolved_at", "first_resolution_hours",
    "resolved_at", "resolution_hours", "closed_at", "reopen_count", "rejection_count",
    "reassignment_count", "escalation_count", "csat_satisfied", "ces_score", "made_sla",
    "subject", "updated_at", "version",
)


def view_facts(db):
    with db.transaction(readonly=True) as cursor:
        cursor.execute(f"SELECT ticket_id, {', '.join(COMPARED_COLUMNS)} FROM ticket_facts")
        return {row[0]: dict(zip(COMPARED_COLUMNS, row[1:])) for row in cursor.fetchall()}


def assert_facts_equal(actual, expected):
    assert set(actual) == set(expected)
    for name, value in expected.items():
        if isinstance(value, float):
            assert actual[name] == pytest.approx(value), name
        else:
            assert actual[name] == value, name


def check_views(app, db):
    stream = [
        app.mapper.to_domain_event(notification)
        for notification in app.recorder.select_notifications(start=1, limit=100_000)
    ]
    per_ticket: dict[str, list] = {}
    for event in stream:
        if type(event).__qualname__.startswith("Ticket."):
            per_ticket.setdefault(str(event.originator_id), []).append(event)
    tickets = {ticket_id: app.get(Ticket, events[0].originator_id) for ticket_id, events in per_ticket.items()}

    facts = view_facts(db)
    assert set(facts) == set(per_ticket)
    for ticket_id, events in per_ticket.items():
        assert_facts_equal(facts[ticket_id], reference_facts(tickets[ticket_id], events))

    with db.transaction(readonly=True) as cursor:
        backlog = dict(cursor.execute("SELECT ticket_id, SUM(change) FROM ticket_backlog_changes GROUP BY ticket_id").fetchall())
        resolved_rows = cursor.execute("SELECT COUNT(*) FROM ticket_backlog_changes WHERE kind = 'resolved'").fetchone()[0]
        episodes = cursor.execute(
            "SELECT ticket_id, seq, level, owner, promised_by, state, update_count FROM escalations"
        ).fetchall()
    for ticket_id, ticket in tickets.items():
        assert backlog.get(ticket_id, 0) == (1 if ticket.status in OPEN else 0)
    assert resolved_rows == sum(1 for event in stream if isinstance(event, Ticket.Resolved))

    for ticket_id, ticket in tickets.items():
        mine = sorted((row for row in episodes if row[0] == ticket_id), key=lambda row: row[1])
        escalations = [e for e in per_ticket[ticket_id] if isinstance(e, Ticket.Escalated)]
        assert len(mine) == len(escalations)
        open_episodes = [row for row in mine if row[5] == "open"]
        if ticket.escalation is None:
            assert open_episodes == []
        else:
            expected_promise = ticket.escalation["promised_by"]
            assert [row[2:5] for row in open_episodes] == [(
                ticket.escalation["level"], ticket.escalation["owner"],
                iso(expected_promise) if expected_promise else None,
            )]
            assert open_episodes[0] == mine[-1]


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(steps=operations(), page_sizes=st.lists(st.integers(1, 7), min_size=1, max_size=4),
       clients=st.lists(st.sampled_from(["acme", "globex", None]), min_size=3, max_size=3))
def test_views_equal_reference(steps, page_sizes, clients):
    app = create_application(load_settings({"HUB_DATABASE_URL": "sqlite:///:memory:"}))
    try:
        runner = ProjectionRunner(app, [TicketFactsView(), EscalationView()])
        tickets = [
            Ticket.open(
                Context(actor_kind="requester", actor_id="r", occurred_at=T0 + timedelta(hours=index)),
                ticket_id=uuid4(), subject="s", channel="email", client_account_id=clients[index],
            )
            for index in range(3)
        ]
        app.save_batch(tickets)
        clock = T0 + timedelta(hours=3)
        pages = iter(page_sizes * 20)
        for ticket_index, name, arguments, step_hours, save_now in steps:
            clock += timedelta(hours=step_hours)
            ticket = tickets[ticket_index]
            try:
                run_command(ticket, name, arguments, clock)
            except DomainError:
                continue
            if save_now:
                app.save_batch(tickets)
                runner.catch_up(page_size=next(pages))
        app.save_batch(tickets)
        runner.catch_up(page_size=next(pages))

        check_views(app, runner.db)

        # A rebuild from the first event in one page gives the same views.
        runner.rebuild(page_size=1000)
        check_views(app, runner.db)
        runner.close()
    finally:
        app.close()
