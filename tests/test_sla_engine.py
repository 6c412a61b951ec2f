"""Tests for the pure SLA engine: clocks per ticket, target and cycle.

Expected values are worked out by hand in the comments. Europe/Berlin is CET
(UTC+1) until Sunday 2024-03-31 02:00 and CEST (UTC+2) after it; 2024-03-01 is a
Friday and 2024-03-04 a Monday.
"""

from __future__ import annotations

from datetime import datetime, timedelta, timezone
from typing import Any
from zoneinfo import ZoneInfo

import pytest

from hub.domain.sla_policy import DEFAULT_PAUSE_STATUSES
from projections.calendar import BusinessCalendar
from projections.sla_engine import PolicyBook, SlaEngine, TargetClock, TicketSla, measure

UTC = timezone.utc
BERLIN = ZoneInfo("Europe/Berlin")
LONG_AGO = datetime(2020, 1, 1, tzinfo=UTC)
OFFICE_HOURS = {
    "timezone": "Europe/Berlin",
    "hours": {day: [["08:00", "18:00"]] for day in ("mon", "tue", "wed", "thu", "fri")},
}


def utc(day: int, hour: int, minute: int = 0, month: int = 3) -> datetime:
    return datetime(2024, month, day, hour, minute, tzinfo=UTC)


def berlin(day: int, hour: int, minute: int = 0, month: int = 3) -> datetime:
    return datetime(2024, month, day, hour, minute, tzinfo=BERLIN)


def policy_terms(targets: dict[str, Any], **overrides: Any) -> dict[str, Any]:
    return {
        "name": "Standard",
        "targets": targets,
        "calendar": None,
        "pause_statuses": DEFAULT_PAUSE_STATUSES,
        "public_notes_count_as_response": False,
        "at_risk_ratio": 0.75,
        **overrides,
    }


def single_policy(targets: dict[str, Any], **overrides: Any) -> PolicyBook:
    book = PolicyBook()
    book.add(
        policy_id="standard", revision=1, terms=policy_terms(targets, **overrides),
        defined_at=LONG_AGO, effective_at=LONG_AGO,
    )
    return book


class Replay:
    """Feed one ticket's events to the engine and keep its rows as the view would."""

    def __init__(self, book: PolicyBook, opened_at: datetime, ticket_id: str = "t-1") -> None:
        self.engine = SlaEngine(book)
        self.ticket: TicketSla = self.engine.open_ticket(ticket_id, opened_at, channel="email")
        self.rows: dict[tuple[str, int], TargetClock] = {}
        self._collect()

    def event(self, kind: str, moment: datetime, **data: Any) -> None:
        self.engine.apply(self.ticket, kind, moment, data)
        self._collect()

    def row(self, target: str, cycle: int = 1) -> TargetClock:
        return self.rows[(target, cycle)]

    def _collect(self) -> None:
        changed, removed = self.ticket.take_changes()
        for clock in changed:
            self.rows[(clock.target, clock.cycle)] = clock
        for _, target, cycle in removed:
            del self.rows[(target, cycle)]


# Response targets


@pytest.mark.parametrize("status_first", [True, False], ids=["pending-then-reply", "reply-then-pending"])
def test_reply_with_pending_meets_first_response(status_first: bool) -> None:
    book = single_policy({"medium": {"first_response": 5, "resolution": 60}})
    replay = Replay(book, utc(4, 10, 0))

    # Both changes of one update share 10:03; their order on the stream varies.
    changes = [("StatusChanged", {"status": "pending"}), ("AgentReplied", {"body": "On it"})]
    for kind, data in changes if status_first else reversed(changes):
        replay.event(kind, utc(4, 10, 3), **data)

    first_response = replay.row("first_response")
    assert first_response.fulfilled_at == utc(4, 10, 3)
    assert first_response.elapsed_minutes == 3
    assert first_response.state == "met"
    resolution = replay.row("resolution")
    assert resolution.state == "paused"
    assert resolution.paused_since == utc(4, 10, 3)
    assert resolution.elapsed_minutes == 3
    assert resolution.due_at is None


def test_resolution_resumes_after_pending() -> None:
    book = single_policy({"medium": {"first_response": 5, "resolution": 60}})
    replay = Replay(book, utc(4, 10, 0))
    replay.event("StatusChanged", utc(4, 10, 3), status="pending")

    replay.event("StatusChanged", utc(4, 10, 33), status="open")

    # 3 minutes ran before the pause and 57 remain from 10:33: due 11:30.
    resolution = replay.row("resolution")
    assert resolution.paused_minutes == 30
    assert resolution.due_at == utc(4, 11, 30)
    # At risk at 45 running minutes: 42 after 10:33, so 11:15.
    assert resolution.at_risk_at == utc(4, 11, 15)
    assert resolution.state == "active"


def test_next_reply_runs_only_while_requester_waits() -> None:
    book = single_policy({"medium": {"first_response": 60, "next_reply": 120}})
    replay = Replay(book, utc(4, 9, 0))
    replay.event("AgentReplied", utc(4, 9, 30), body="Hello")

    assert ("next_reply", 1) not in replay.rows
    assert "next_reply" not in replay.ticket.running

    replay.event("RequesterReplied", utc(4, 15, 0), body="Still broken")

    next_reply = replay.row("next_reply", 1)
    assert next_reply.started_at == utc(4, 15, 0)
    assert next_reply.elapsed_minutes == 0
    assert next_reply.due_at == utc(4, 17, 0)
    # 75 % of 120 minutes is 90 minutes after 15:00.
    assert next_reply.at_risk_at == utc(4, 16, 30)


def test_second_requester_message_keeps_the_running_cycle() -> None:
    book = single_policy({"medium": {"first_response": 60, "next_reply": 120}})
    replay = Replay(book, utc(4, 9, 0))
    replay.event("AgentReplied", utc(4, 9, 30), body="Hello")
    replay.event("RequesterReplied", utc(4, 15, 0), body="Still broken")

    replay.event("RequesterReplied", utc(4, 15, 40), body="Any news?")

    assert ("next_reply", 2) not in replay.rows
    assert replay.row("next_reply", 1).due_at == utc(4, 17, 0)


def test_next_reply_cycles_are_numbered() -> None:
    book = single_policy({"medium": {"first_response": 60, "next_reply": 120}})
    replay = Replay(book, utc(4, 9, 0))
    replay.event("AgentReplied", utc(4, 9, 30), body="Hello")
    replay.event("RequesterReplied", utc(4, 10, 0), body="Thanks, but")
    replay.event("AgentReplied", utc(4, 10, 50), body="Try this")

    replay.event("RequesterReplied", utc(4, 13, 0), body="Works now?")

    first = replay.row("next_reply", 1)
    assert first.fulfilled_at == utc(4, 10, 50)
    assert first.elapsed_minutes == 50
    assert first.state == "met"
    second = replay.row("next_reply", 2)
    assert second.started_at == utc(4, 13, 0)
    assert second.due_at == utc(4, 15, 0)


def test_only_first_response_governs_before_first_reply() -> None:
    book = single_policy({"medium": {"first_response": 120, "next_reply": 60}})
    replay = Replay(book, utc(4, 9, 0))

    # A second requester message before any reply starts no next-reply clock.
    replay.event("RequesterReplied", utc(4, 9, 20), body="Hello?")

    assert replay.row("first_response").due_at == utc(4, 11, 0)
    assert [key for key in replay.rows if key[0] == "next_reply"] == []


def test_internal_note_never_meets_response() -> None:
    book = single_policy({"medium": {"first_response": 240}})
    replay = Replay(book, utc(4, 8, 0))

    replay.event("InternalNoteAdded", utc(4, 8, 30), body="Checking logs")

    assert replay.row("first_response").fulfilled_at is None
    assert replay.row("first_response").state == "active"

    replay.event("AgentReplied", utc(4, 13, 0), body="Fixed")

    # Due 12:00 (08:00 + 240 minutes); the reply at 13:00 comes 60 minutes late.
    first_response = replay.row("first_response")
    assert first_response.elapsed_minutes == 300
    assert first_response.due_at == utc(4, 12, 0)
    assert first_response.state == "missed"
    assert first_response.breached_at == utc(4, 12, 0)
    assert first_response.fulfilled_by == "AgentReplied"


def test_unanswered_target_is_breached_after_due() -> None:
    book = single_policy({"medium": {"first_response": 240}})
    replay = Replay(book, utc(4, 8, 0))
    replay.event("InternalNoteAdded", utc(4, 12, 30), body="Forgot to reply")

    first_response = replay.row("first_response")
    assert first_response.state == "breached"
    assert first_response.breached_at == utc(4, 12, 0)
    assert first_response.remaining_minutes == -30


@pytest.mark.parametrize(("count", "expected_state"), [(True, "met"), (False, "active")])
def test_public_note_counts_per_policy(count: bool, expected_state: str) -> None:
    book = single_policy(
        {"medium": {"first_response": 60}}, public_notes_count_as_response=count
    )
    replay = Replay(book, utc(4, 9, 0))

    replay.event("PublicNoteAdded", utc(4, 9, 10), body="Visible, not sent")

    assert replay.row("first_response").state == expected_state


def test_clarification_request_meets_response() -> None:
    book = single_policy({"medium": {"first_response": 60}})
    replay = Replay(book, utc(4, 9, 0))

    replay.event("ClarificationRequested", utc(4, 9, 25), body="Which account?")

    first_response = replay.row("first_response")
    assert first_response.state == "met"
    assert first_response.elapsed_minutes == 25
    assert first_response.fulfilled_by == "ClarificationRequested"


def test_first_response_runs_while_pending() -> None:
    book = single_policy({"medium": {"first_response": 60, "resolution": 600}})
    replay = Replay(book, utc(4, 9, 0))
    replay.event("StatusChanged", utc(4, 9, 10), status="on_hold")
    replay.event("StatusChanged", utc(4, 10, 10), status="open")

    replay.event("AgentReplied", utc(4, 10, 20), body="Sorry for the wait")

    # The default pause statuses leave the first-response clock running: 80 minutes.
    first_response = replay.row("first_response")
    assert first_response.elapsed_minutes == 80
    assert first_response.paused_minutes == 0
    assert first_response.state == "missed"
    assert replay.row("resolution").paused_minutes == 60


# Business calendars


def test_business_hours_due_and_at_risk_next_morning() -> None:
    book = single_policy({"medium": {"first_response": 240}}, calendar=OFFICE_HOURS)

    replay = Replay(book, berlin(4, 17, 0))

    # Monday 17:00-18:00 is 60 minutes; 180 more from Tuesday 08:00 ends at 11:00.
    first_response = replay.row("first_response")
    assert first_response.due_at == berlin(5, 11, 0)
    # One hour before the due time, at 180 business minutes: Tuesday 10:00.
    assert first_response.at_risk_at == berlin(5, 10, 0)
    assert first_response.at_risk_at != berlin(5, 0, 0)


def test_pending_over_weekend_in_business_time() -> None:
    book = single_policy({"medium": {"resolution": 600}}, calendar=OFFICE_HOURS)
    replay = Replay(book, berlin(1, 14, 0))
    replay.event("StatusChanged", berlin(1, 16, 0), status="pending")

    replay.event("StatusChanged", berlin(4, 10, 0), status="open")

    # Friday 14:00-16:00 ran 120 minutes; 480 remain from Monday 10:00: 18:00.
    resolution = replay.row("resolution")
    assert resolution.elapsed_minutes == 120
    # Paused in business time: Friday 16:00-18:00 and Monday 08:00-10:00.
    assert resolution.paused_minutes == 240
    assert resolution.due_at == berlin(4, 18, 0)


def test_due_time_across_spring_forward() -> None:
    book = single_policy({"medium": {"first_response": 240}}, calendar=OFFICE_HOURS)

    replay = Replay(book, berlin(29, 16, 0))

    # Friday 16:00-18:00 CET is 120 minutes; Monday 2024-04-01 08:00-10:00 CEST
    # the rest. 10:00 CEST is 08:00 UTC, while three fixed 24-hour steps from
    # the CET Friday would give 09:00 UTC.
    due_at = replay.row("first_response").due_at
    assert due_at == berlin(1, 10, 0, month=4)
    assert due_at == utc(1, 8, 0, month=4)


def test_measure_replays_pauses_in_business_time() -> None:
    calendar = BusinessCalendar.from_dict(OFFICE_HOURS)
    log = [
        (berlin(1, 14, 0), "new"),
        (berlin(1, 16, 0), "pending"),
        (berlin(4, 10, 0), "open"),
    ]

    elapsed, paused, paused_since, reached = measure(
        calendar, berlin(1, 14, 0), berlin(4, 12, 0), log, frozenset({"pending"}),
        marks=(60, 240, 600),
    )

    # Running: Friday 14:00-16:00 and Monday 10:00-12:00, 240 minutes.
    assert elapsed == 240
    assert paused == 240
    assert paused_since is None
    # 60 running minutes at Friday 15:00 and 240 at Monday 12:00; the last 360 of
    # 600 fill Monday 12:00-18:00.
    assert reached == [berlin(1, 15, 0), berlin(4, 12, 0), berlin(4, 18, 0)]


def test_measure_leaves_marks_open_while_paused() -> None:
    calendar = BusinessCalendar.from_dict(None)
    log = [(utc(4, 9, 0), "new"), (utc(4, 9, 30), "pending")]

    elapsed, paused, paused_since, reached = measure(
        calendar, utc(4, 9, 0), utc(4, 10, 0), log, frozenset({"pending"}), marks=(20, 45),
    )

    assert (elapsed, paused, paused_since) == (30, 30, utc(4, 9, 30))
    assert reached == [utc(4, 9, 20), None]


# Reprioritization, reopening and closing


def test_reprioritization_recomputes_from_ticket_start() -> None:
    book = single_policy({
        "medium": {"first_response": 240},
        "critical": {"first_response": 30},
    })
    replay = Replay(book, utc(4, 9, 0))
    assert replay.row("first_response").due_at == utc(4, 13, 0)

    replay.event("Prioritized", utc(4, 10, 0), priority="critical")

    # 30 minutes from the 09:00 opening: due 09:30, already passed at 10:00.
    first_response = replay.row("first_response")
    assert first_response.priority == "critical"
    assert first_response.target_minutes == 30
    assert first_response.due_at == utc(4, 9, 30)
    assert first_response.state == "breached"
    assert first_response.breached_at == utc(4, 9, 30)


def test_reprioritization_keeps_pauses_from_ticket_start() -> None:
    book = single_policy({
        "medium": {"resolution": 600},
        "critical": {"resolution": 120},
        "high": {"resolution": 45},
    })
    replay = Replay(book, utc(4, 9, 0))
    replay.event("StatusChanged", utc(4, 9, 30), status="pending")
    replay.event("StatusChanged", utc(4, 10, 30), status="open")

    replay.event("Prioritized", utc(4, 11, 0), priority="critical")

    # Ran 09:00-09:30 and 10:30-11:00: 60 minutes, so 60 remain from 11:00.
    resolution = replay.row("resolution")
    assert resolution.elapsed_minutes == 60
    assert resolution.paused_minutes == 60
    assert resolution.due_at == utc(4, 12, 0)
    # 90 running minutes (75 % of 120): 30 after 11:00.
    assert resolution.at_risk_at == utc(4, 11, 30)

    replay.event("Prioritized", utc(4, 11, 5), priority="high")

    # 45 minutes: 30 before the pause, 15 after 10:30, so due 10:45, breached.
    resolution = replay.row("resolution")
    assert resolution.due_at == utc(4, 10, 45)
    assert resolution.state == "breached"


def test_reprioritization_leaves_met_targets_alone() -> None:
    book = single_policy({
        "medium": {"first_response": 60, "resolution": 600},
        "critical": {"first_response": 5, "resolution": 120},
    })
    replay = Replay(book, utc(4, 9, 0))
    replay.event("AgentReplied", utc(4, 9, 20), body="Looking")

    replay.event("Prioritized", utc(4, 9, 40), priority="critical")

    assert replay.row("first_response").state == "met"
    assert replay.row("first_response").target_minutes == 60
    assert replay.row("resolution").due_at == utc(4, 11, 0)


def test_priority_without_target_removes_row() -> None:
    book = single_policy({
        "medium": {"first_response": 60, "resolution": 600},
        "low": {"resolution": 2400},
    })
    replay = Replay(book, utc(4, 9, 0))

    replay.event("Prioritized", utc(4, 9, 10), priority="low")

    assert ("first_response", 1) not in replay.rows
    assert replay.row("resolution").due_at == utc(4, 9, 0) + timedelta(minutes=2400)


def test_priority_with_new_target_adds_row_from_start() -> None:
    book = single_policy({
        "medium": {"resolution": 600},
        "high": {"first_response": 30, "resolution": 240},
    })
    replay = Replay(book, utc(4, 9, 0))
    assert ("first_response", 1) not in replay.rows

    replay.event("Prioritized", utc(4, 9, 10), priority="high")

    first_response = replay.row("first_response")
    assert first_response.started_at == utc(4, 9, 0)
    assert first_response.elapsed_minutes == 10
    assert first_response.due_at == utc(4, 9, 30)


def test_unprioritized_ticket_uses_medium_targets() -> None:
    book = single_policy({"medium": {"first_response": 60}, "high": {"first_response": 15}})

    replay = Replay(book, utc(4, 9, 0))

    first_response = replay.row("first_response")
    assert first_response.priority == "medium"
    assert first_response.due_at == utc(4, 10, 0)


def test_reopen_starts_new_resolution_cycle() -> None:
    book = single_policy({"medium": {"first_response": 60, "next_reply": 30, "resolution": 240}})
    replay = Replay(book, utc(4, 9, 0))
    replay.event("AgentReplied", utc(4, 9, 10), body="Fixed")
    replay.event("Resolved", utc(4, 10, 0), resolution_code="fixed")

    replay.event("Reopened", utc(4, 14, 0), reason="Broke again")

    first_cycle = replay.row("resolution", 1)
    assert first_cycle.fulfilled_at == utc(4, 10, 0)
    assert first_cycle.elapsed_minutes == 60
    assert first_cycle.state == "met"
    second_cycle = replay.row("resolution", 2)
    assert second_cycle.started_at == utc(4, 14, 0)
    assert second_cycle.due_at == utc(4, 18, 0)
    # The reopened ticket waits on an agent again.
    assert replay.row("next_reply", 1).due_at == utc(4, 14, 30)


def test_rejected_resolution_starts_new_cycle() -> None:
    book = single_policy({"medium": {"first_response": 60, "resolution": 240}})
    replay = Replay(book, utc(4, 9, 0))
    replay.event("Resolved", utc(4, 10, 0), resolution_code="fixed")

    replay.event("ResolutionRejected", utc(4, 11, 0), reason="Not fixed")

    assert replay.row("resolution", 1).state == "met"
    assert replay.row("resolution", 2).due_at == utc(4, 15, 0)


def test_response_clock_pauses_while_resolved() -> None:
    book = single_policy({"medium": {"first_response": 60, "resolution": 240}})
    replay = Replay(book, utc(4, 9, 0))
    replay.event("Resolved", utc(4, 9, 20), resolution_code="fixed")

    assert replay.row("first_response").state == "paused"

    replay.event("Reopened", utc(4, 10, 0), reason="Need an answer")
    replay.event("AgentReplied", utc(4, 10, 30), body="Here it is")

    # Ran 09:00-09:20 and 10:00-10:30: 50 minutes, paused 40.
    first_response = replay.row("first_response")
    assert first_response.elapsed_minutes == 50
    assert first_response.paused_minutes == 40
    assert first_response.state == "met"


def test_close_without_resolution_stops_resolution() -> None:
    book = single_policy({"medium": {"first_response": 60, "resolution": 240}})
    replay = Replay(book, utc(4, 9, 0))
    replay.event("AgentReplied", utc(4, 9, 5), body="Duplicate of another ticket")

    replay.event("Closed", utc(4, 9, 30), note="Duplicate")

    resolution = replay.row("resolution")
    assert resolution.fulfilled_at == utc(4, 9, 30)
    assert resolution.fulfilled_by == "Closed"
    assert resolution.state == "met"
    assert replay.ticket.running == {}


def test_close_after_due_is_missed() -> None:
    book = single_policy({"medium": {"first_response": 60, "resolution": 240}})
    replay = Replay(book, utc(4, 9, 0))

    replay.event("Closed", utc(4, 11, 0), note="Spam")

    first_response = replay.row("first_response")
    assert first_response.state == "missed"
    assert first_response.breached_at == utc(4, 10, 0)
    assert replay.row("resolution").state == "met"


def test_reopen_after_close_starts_next_reply() -> None:
    book = single_policy({"medium": {"first_response": 60, "next_reply": 30, "resolution": 240}})
    replay = Replay(book, utc(4, 9, 0))
    replay.event("Closed", utc(4, 9, 30), note="Done")

    replay.event("Reopened", utc(4, 12, 0), reason="Not done")

    assert replay.row("next_reply", 1).due_at == utc(4, 12, 30)
    assert replay.row("resolution", 2).due_at == utc(4, 16, 0)


# Policies


def test_policy_revision_in_force_at_opening() -> None:
    book = PolicyBook()
    book.add(
        policy_id="standard", revision=1, terms=policy_terms({"medium": {"first_response": 60}}),
        defined_at=utc(1, 0), effective_at=utc(1, 0),
    )
    book.add(
        policy_id="standard", revision=2, terms=policy_terms({"medium": {"first_response": 30}}),
        defined_at=utc(1, 0), effective_at=utc(5, 0),
    )

    before = Replay(book, utc(4, 9, 0), ticket_id="before")
    after = Replay(book, utc(6, 9, 0), ticket_id="after")

    assert before.row("first_response").policy_revision == 1
    assert before.row("first_response").due_at == utc(4, 10, 0)
    assert after.row("first_response").policy_revision == 2
    assert after.row("first_response").due_at == utc(6, 9, 30)


def test_latest_defined_policy_governs() -> None:
    book = PolicyBook()
    book.add(
        policy_id="old", revision=1, terms=policy_terms({"medium": {"first_response": 60}}),
        defined_at=utc(1, 0), effective_at=utc(1, 0),
    )
    book.add(
        policy_id="new", revision=1, terms=policy_terms({"medium": {"first_response": 20}}),
        defined_at=utc(2, 0), effective_at=utc(2, 0),
    )

    replay = Replay(book, utc(4, 9, 0))

    assert replay.row("first_response").policy_id == "new"
    assert replay.row("first_response").due_at == utc(4, 9, 20)


def test_ticket_before_any_policy_has_no_rows() -> None:
    book = PolicyBook()
    book.add(
        policy_id="standard", revision=1, terms=policy_terms({"medium": {"first_response": 60}}),
        defined_at=utc(5, 0), effective_at=utc(5, 0),
    )

    replay = Replay(book, utc(4, 9, 0))
    replay.event("AgentReplied", utc(4, 9, 30), body="Hi")

    assert replay.ticket.policy_id is None
    assert replay.rows == {}


def test_next_revision_number_counts_revisions() -> None:
    book = single_policy({"medium": {"first_response": 60}})

    assert book.next_revision_number("standard") == 2
    assert book.next_revision_number("unknown") == 1


# Event order, live values and alerts


def test_late_occurred_at_does_not_run_clock_backwards() -> None:
    book = single_policy({"medium": {"first_response": 60}})
    replay = Replay(book, utc(4, 9, 0))
    replay.event("InternalNoteAdded", utc(4, 9, 40), body="Note")

    # An import delivers a reply stamped before the note; it counts at 09:40.
    replay.event("AgentReplied", utc(4, 9, 30), body="Hi")

    first_response = replay.row("first_response")
    assert first_response.fulfilled_at == utc(4, 9, 40)
    assert first_response.elapsed_minutes == 40


def test_live_values_run_on_without_changing_row() -> None:
    book = single_policy({"medium": {"first_response": 60, "resolution": 240}})
    replay = Replay(book, utc(4, 9, 0))
    replay.event("StatusChanged", utc(4, 9, 10), status="pending")
    calendar = BusinessCalendar.from_dict(None)

    first_response = replay.row("first_response").live(calendar, utc(4, 9, 50))
    resolution = replay.row("resolution").live(calendar, utc(4, 9, 50))

    # First response ran 50 minutes of 60: past the 45-minute at-risk mark.
    assert first_response["elapsed_business_minutes"] == 50
    assert first_response["remaining_business_minutes"] == 10
    assert first_response["state"] == "at_risk"
    assert resolution["elapsed_business_minutes"] == 10
    assert resolution["paused_minutes"] == 40
    assert resolution["state"] == "paused"
    assert replay.row("first_response").elapsed_minutes == 10


def test_live_values_after_due_are_breached() -> None:
    book = single_policy({"medium": {"first_response": 60}})
    replay = Replay(book, utc(4, 9, 0))

    live = replay.row("first_response").live(BusinessCalendar.from_dict(None), utc(4, 10, 15))

    assert live["state"] == "breached"
    assert live["breached_at"] == utc(4, 10, 0)
    assert live["remaining_business_minutes"] == -15


def test_sla_alert_event_marks_running_clock() -> None:
    book = single_policy({"medium": {"first_response": 60}})
    replay = Replay(book, utc(4, 9, 0))

    replay.event("SlaAtRisk", utc(4, 9, 45), target="first_response", cycle=1, due_at=utc(4, 10, 0))

    assert replay.row("first_response").at_risk_flagged is True
    assert replay.row("first_response").breach_flagged is False
    assert replay.ticket.take_flags() == [("at_risk", "first_response", 1)]
