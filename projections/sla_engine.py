"""SLA clocks per ticket, target and cycle, derived from ticket events.

The engine is pure: it keeps per-ticket state in plain objects, does no I/O and
reads no clock. The SLA view feeds it ticket events in stream order and stores
what it returns.

Targets and cycles:

- ``first_response`` (cycle 1) runs from the opening until the first public agent
  reply.
- ``next_reply`` runs from a requester message, sent after the first response
  while no earlier requester message is unanswered, until the next public agent
  reply. Each such message starts a new cycle (1, 2, ...). Before the first
  response only the first-response target runs.
- ``resolution`` runs from the opening until the ticket is resolved. A reopen or
  a rejected resolution starts a new cycle, which also starts a next-reply cycle
  when the first response is done and no reply cycle is running, because the
  ticket waits on an agent again.

Public agent replies are ``AgentReplied`` and ``ClarificationRequested``.
``PublicNoteAdded`` counts only when the policy's
``public_notes_count_as_response`` is true, and ``InternalNoteAdded`` never does.
Closing a ticket ends every running clock: met when still within the target,
missed otherwise. While a ticket is resolved its response clocks are paused,
because the ticket waits on the requester's confirmation. Otherwise a clock
pauses in the statuses the policy lists for its target.

A clock's times are business minutes of the policy's calendar. The due time is
the instant at which the running (unpaused) business minutes reach the target,
and the at-risk time is the instant at which they reach ``at_risk_ratio`` of
it. A paused clock has no due time unless it was already due before the pause.
A clock is breached once the current time is past its due time and the target is
not yet fulfilled. A target fulfilled after its due time is missed, and its
breach time stays the due time.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field, replace
from datetime import datetime
from typing import Any

from projections.calendar import BusinessCalendar, CalendarError

__all__ = [
    "DEFAULT_PRIORITY",
    "HANDLED_EVENTS",
    "STATES",
    "TARGETS",
    "PolicyBook",
    "PolicyRevision",
    "SlaEngine",
    "TargetClock",
    "TicketSla",
    "measure",
]

TARGETS = ("first_response", "next_reply", "resolution")
RESPONSE_TARGETS = ("first_response", "next_reply")
STATES = ("active", "paused", "at_risk", "breached", "met", "missed")

# NOTE: a ticket that has no priority yet is measured against the policy's
# "medium" targets, and its rows carry that priority until it is prioritized.
DEFAULT_PRIORITY = "medium"

# Statuses that pause the response clocks whatever the policy sets: a resolved
# ticket waits on the requester's confirmation, not on an agent.
RESPONSE_PAUSE_STATUSES = frozenset({"resolved"})

# The calendar of an unusable policy revision, which the engine never measures with.
UNUSED_CALENDAR = BusinessCalendar(None)

# One status change: (when, new status).
StatusEntry = tuple[datetime, str]
# The fields of a ticket event.
EventData = dict[str, Any]


@dataclass(frozen=True)
class PolicyRevision:
    """The terms of one revision of an SLA policy and when it came into force.

    A revision whose terms the clocks cannot use (a calendar that
    ``BusinessCalendar.from_dict`` rejects, stored before the domain checked
    calendars) has ``invalid_reason`` set. It still governs the tickets opened
    while it is in force, so their rows name it, but the engine starts no clock
    under it and its ``calendar`` is a 24x7 stand-in that nothing reads.
    """

    policy_id: str
    revision: int
    name: str
    targets: dict[str, dict[str, float | None]]
    calendar_spec: dict[str, Any] | None
    pause_statuses: dict[str, list[str]]
    public_notes_count_as_response: bool
    at_risk_ratio: float
    defined_at: datetime
    effective_at: datetime
    calendar: BusinessCalendar = field(compare=False, repr=False)
    invalid_reason: str | None = None

    @property
    def usable(self) -> bool:
        return self.invalid_reason is None

    def target_minutes(self, priority: str | None, target: str) -> float | None:
        per_target = self.targets.get(priority or DEFAULT_PRIORITY) or {}
        minutes = per_target.get(target)
        return float(minutes) if minutes is not None else None

    def pause_set(self, target: str) -> frozenset[str]:
        statuses = frozenset(self.pause_statuses.get(target, ()))
        if target in RESPONSE_TARGETS:
            return statuses | RESPONSE_PAUSE_STATUSES
        return statuses


class PolicyBook:
    """Every revision of every SLA policy, to find the one that governs a ticket.

    Calendars with the same spec share one :class:`BusinessCalendar`, so its
    cache of converted days serves every revision that uses it.
    """

    def __init__(self, calendars: dict[str, BusinessCalendar] | None = None) -> None:
        self._revisions: dict[str, list[PolicyRevision]] = {}
        self._calendars = calendars if calendars is not None else {}

    def __len__(self) -> int:
        return sum(len(revisions) for revisions in self._revisions.values())

    def __iter__(self) -> Iterator[PolicyRevision]:
        for revisions in self._revisions.values():
            yield from revisions

    def calendar_for(self, spec: dict[str, Any] | None) -> BusinessCalendar:
        key = json.dumps(spec, sort_keys=True)
        calendar = self._calendars.get(key)
        if calendar is None:
            calendar = BusinessCalendar.from_dict(spec)
            self._calendars[key] = calendar
        return calendar

    def next_revision_number(self, policy_id: str) -> int:
        revisions = self._revisions.get(policy_id)
        return revisions[-1].revision + 1 if revisions else 1

    def defined_at(self, policy_id: str) -> datetime | None:
        revisions = self._revisions.get(policy_id)
        return revisions[0].defined_at if revisions else None

    def add(
        self,
        *,
        policy_id: str,
        revision: int,
        terms: dict[str, Any],
        defined_at: datetime,
        effective_at: datetime,
    ) -> PolicyRevision:
        """Add one revision; ``terms`` are the fields of a Defined or Revised event.

        A calendar that ``BusinessCalendar.from_dict`` rejects makes the revision
        unusable (see :class:`PolicyRevision`) rather than raising, because the
        events that hold it are already stored.
        """
        invalid_reason = None
        try:
            calendar = self.calendar_for(terms["calendar"])
        except CalendarError as error:
            invalid_reason = str(error)
            calendar = UNUSED_CALENDAR
        entry = PolicyRevision(
            policy_id=policy_id,
            revision=revision,
            name=terms["name"],
            targets=terms["targets"],
            calendar_spec=terms["calendar"],
            pause_statuses=terms["pause_statuses"],
            public_notes_count_as_response=bool(terms["public_notes_count_as_response"]),
            at_risk_ratio=float(terms["at_risk_ratio"]),
            defined_at=defined_at,
            effective_at=effective_at,
            calendar=calendar,
            invalid_reason=invalid_reason,
        )
        revisions = self._revisions.setdefault(policy_id, [])
        revisions.append(entry)
        revisions.sort(key=lambda item: item.revision)
        return entry

    def get(self, policy_id: str, revision: int) -> PolicyRevision | None:
        for entry in self._revisions.get(policy_id, ()):
            if entry.revision == revision:
                return entry
        return None

    def governing(self, opened_at: datetime) -> PolicyRevision | None:
        """Return the revision in force at ``opened_at`` of the latest policy defined by then.

        Policies are compared by when they were defined and revisions by when
        they came into force, both by ``occurred_at``. A ticket opened before any
        policy was defined has none.
        """
        chosen: list[PolicyRevision] | None = None
        for revisions in self._revisions.values():
            defined_at = revisions[0].defined_at
            if defined_at > opened_at:
                continue
            if chosen is None or defined_at >= chosen[0].defined_at:
                chosen = revisions
        if chosen is None:
            return None
        in_force = [entry for entry in chosen if entry.effective_at <= opened_at]
        return max(in_force, key=lambda entry: (entry.effective_at, entry.revision))


@dataclass
class TargetClock:
    """One target of one ticket in one cycle, measured up to ``as_of``."""

    ticket_id: str
    target: str
    cycle: int
    priority: str
    policy_id: str
    policy_revision: int
    target_minutes: float
    at_risk_ratio: float
    started_at: datetime
    as_of: datetime
    elapsed_minutes: float = 0.0
    paused_minutes: float = 0.0
    paused_since: datetime | None = None
    due_at: datetime | None = None
    at_risk_at: datetime | None = None
    fulfilled_at: datetime | None = None
    fulfilled_by: str | None = None
    at_risk_flagged: bool = False
    breach_flagged: bool = False
    channel: str | None = None
    group: str | None = None
    agent: str | None = None
    client_account_id: str | None = None

    @property
    def key(self) -> tuple[str, str, int]:
        return (self.ticket_id, self.target, self.cycle)

    @property
    def is_running(self) -> bool:
        return self.fulfilled_at is None

    @property
    def remaining_minutes(self) -> float:
        """Business minutes left before the due time; negative once it has passed."""
        return self.target_minutes - self.elapsed_minutes

    def state_at(self, moment: datetime) -> str:
        if self.fulfilled_at is not None:
            if self.due_at is not None and self.fulfilled_at > self.due_at:
                return "missed"
            return "met"
        if self.due_at is not None and moment > self.due_at:
            return "breached"
        if self.paused_since is not None:
            return "paused"
        if self.at_risk_at is not None and moment >= self.at_risk_at:
            return "at_risk"
        return "active"

    @property
    def state(self) -> str:
        return self.state_at(self.as_of)

    @property
    def breached_at(self) -> datetime | None:
        return self.due_at if self.state in ("breached", "missed") else None

    def advance(self, calendar: BusinessCalendar, moment: datetime) -> None:
        """Count the business minutes from ``as_of`` to ``moment`` as running or paused."""
        if self.fulfilled_at is not None or moment <= self.as_of:
            return
        span = calendar.between(self.as_of, moment)
        if self.paused_since is None:
            self.elapsed_minutes += span
        else:
            self.paused_minutes += span
        self.as_of = moment

    def pause(self, calendar: BusinessCalendar, moment: datetime) -> None:
        self.advance(calendar, moment)
        if self.paused_since is not None or self.fulfilled_at is not None:
            return
        self.paused_since = moment
        # Instants still ahead move with the pause; ones already reached stay.
        if self.due_at is not None and self.due_at > moment:
            self.due_at = None
        if self.at_risk_at is not None and self.at_risk_at > moment:
            self.at_risk_at = None

    def resume(self, calendar: BusinessCalendar, moment: datetime) -> None:
        self.advance(calendar, moment)
        if self.paused_since is None or self.fulfilled_at is not None:
            return
        self.paused_since = None
        if self.at_risk_at is None:
            self.at_risk_at = self._instant_after(calendar, moment, self.at_risk_ratio * self.target_minutes)
        if self.due_at is None:
            self.due_at = self._instant_after(calendar, moment, self.target_minutes)

    def fulfil(self, calendar: BusinessCalendar, moment: datetime, by: str) -> None:
        self.advance(calendar, moment)
        if self.fulfilled_at is not None:
            return
        self.fulfilled_at = max(moment, self.as_of)
        self.fulfilled_by = by
        self.paused_since = None

    def _instant_after(self, calendar: BusinessCalendar, moment: datetime, minutes: float) -> datetime:
        return calendar.add(moment, max(minutes - self.elapsed_minutes, 0.0))

    def live(self, calendar: BusinessCalendar, moment: datetime) -> dict[str, Any]:
        """Return elapsed, paused and remaining minutes and the state as of ``moment``.

        Nothing is changed. A moment before ``as_of`` gives the values as of
        ``as_of``, because the clock cannot be wound back without its history.
        """
        probe = replace(self)
        probe.advance(calendar, moment)
        at = max(moment, probe.as_of)
        state = probe.state_at(at)
        return {
            "as_of": at,
            "elapsed_business_minutes": probe.elapsed_minutes,
            "paused_minutes": probe.paused_minutes,
            "remaining_business_minutes": probe.remaining_minutes,
            "state": state,
            "breached_at": probe.due_at if state in ("breached", "missed") else None,
        }


@dataclass
class TicketSla:
    """Per-ticket state that the engine keeps between a ticket's events."""

    ticket_id: str
    opened_at: datetime
    policy_id: str | None
    policy_revision: int | None
    status: str = "new"
    priority: str | None = None
    status_log: list[StatusEntry] = field(default_factory=list)
    channel: str | None = None
    group: str | None = None
    agent: str | None = None
    client_account_id: str | None = None
    first_response_done: bool = False
    next_reply_cycle: int = 0
    next_reply_started_at: datetime | None = None
    resolution_cycle: int = 1
    resolution_started_at: datetime | None = None
    last_event_at: datetime | None = None
    # Running clocks by target, plus every clock changed since the last take_changes().
    running: dict[str, TargetClock] = field(default_factory=dict)
    changed: dict[tuple[str, str, int], TargetClock] = field(default_factory=dict)
    removed: set[tuple[str, str, int]] = field(default_factory=set)
    flags: list[tuple[str, str, int]] = field(default_factory=list)

    @property
    def has_policy(self) -> bool:
        return self.policy_id is not None

    def take_changes(self) -> tuple[list[TargetClock], list[tuple[str, str, int]]]:
        """Return the clocks to store and the keys to delete, and forget them."""
        changed = list(self.changed.values())
        removed = sorted(self.removed)
        self.changed = {}
        self.removed = set()
        return changed, removed

    def take_flags(self) -> list[tuple[str, str, int]]:
        """Return (kind, target, cycle) of the SLA alerts recorded since the last call."""
        flags, self.flags = self.flags, []
        return flags

    def cycle_started_at(self, target: str) -> datetime | None:
        """Return the start of the target's current cycle, or None if none is running."""
        if target == "first_response":
            return None if self.first_response_done else self.opened_at
        if target == "next_reply":
            return self.next_reply_started_at
        return self.resolution_started_at

    def cycle_number(self, target: str) -> int:
        if target == "first_response":
            return 1
        if target == "next_reply":
            return self.next_reply_cycle
        return self.resolution_cycle


def measure(
    calendar: BusinessCalendar,
    started_at: datetime,
    until: datetime,
    status_log: Iterable[StatusEntry],
    pause_set: frozenset[str],
    marks: Iterable[float] = (),
) -> tuple[float, float, datetime | None, list[datetime | None]]:
    """Replay a clock from ``started_at`` to ``until`` over the status changes.

    Return the running and the paused business minutes, the start of the pause
    in force at ``until`` (or None), and for each mark (in business minutes) the
    instant the running minutes reach it. A mark not reached by ``until`` gets
    the instant it will be reached if the clock keeps running, or None when the
    clock is paused at ``until``.
    """
    marks = list(marks)
    reached: list[datetime | None] = [None] * len(marks)

    # Find the status in force at the start and the changes after it.
    status: str | None = None
    changes: list[StatusEntry] = []
    for moment, new_status in status_log:
        if moment <= started_at:
            status = new_status
        elif moment <= until:
            changes.append((moment, new_status))

    # Count each segment between two changes as running or paused.
    elapsed = 0.0
    paused = 0.0
    paused_since = started_at if status in pause_set else None
    segment_start = started_at
    for segment_end, next_status in [*changes, (until, None)]:
        span = calendar.between(segment_start, segment_end)
        if status in pause_set:
            paused += span
        else:
            for index, mark in enumerate(marks):
                if reached[index] is None and elapsed + span >= mark:
                    reached[index] = calendar.add(segment_start, max(mark - elapsed, 0.0))
            elapsed += span
        if next_status is not None:
            if next_status not in pause_set:
                paused_since = None
            elif status not in pause_set:
                paused_since = segment_end
            status = next_status
        segment_start = segment_end

    # Marks still ahead are reached after ``until`` unless the clock is paused.
    if paused_since is None:
        for index, mark in enumerate(marks):
            if reached[index] is None:
                reached[index] = calendar.add(until, max(mark - elapsed, 0.0))
    return elapsed, paused, paused_since, reached


class SlaEngine:
    """Apply ticket events to per-ticket SLA state.

    Events are named by their class name on ``Ticket``, such as
    ``"AgentReplied"``. An event without a rule of its own only brings the
    running clocks up to its time.
    ``occurred_at`` values earlier than the ticket's previous event are taken as
    that previous instant, so clocks never run backwards.
    """

    def __init__(self, policies: PolicyBook) -> None:
        self.policies = policies

    def open_ticket(
        self,
        ticket_id: str,
        opened_at: datetime,
        *,
        channel: str | None = None,
        client_account_id: str | None = None,
    ) -> TicketSla:
        """Start the SLA state of a new ticket under the policy in force at ``opened_at``."""
        policy = self.policies.governing(opened_at)
        ticket = TicketSla(
            ticket_id=ticket_id,
            opened_at=opened_at,
            policy_id=policy.policy_id if policy else None,
            policy_revision=policy.revision if policy else None,
            status_log=[(opened_at, "new")],
            channel=channel,
            client_account_id=client_account_id,
            resolution_started_at=opened_at,
            last_event_at=opened_at,
        )
        if policy is not None and policy.usable:
            self._start(ticket, policy, "first_response", opened_at)
            self._start(ticket, policy, "resolution", opened_at)
        return ticket

    def apply(self, ticket: TicketSla, kind: str, occurred_at: datetime, data: EventData) -> None:
        """Apply one ticket event, given by its class name, time and fields."""
        moment = occurred_at
        if ticket.last_event_at is not None and moment < ticket.last_event_at:
            moment = ticket.last_event_at
        ticket.last_event_at = moment
        if ticket.policy_id is None or ticket.policy_revision is None:
            return
        policy = self.policies.get(ticket.policy_id, ticket.policy_revision)
        if policy is None or not policy.usable:
            return

        handler = _HANDLERS.get(kind)
        if handler is None:
            # Any other event still brings the running clocks up to its time.
            self._advance_all(ticket, policy, moment)
        else:
            handler(self, ticket, policy, moment, kind, data)

    # Event handlers.

    def _on_prioritized(
        self, ticket: TicketSla, policy: PolicyRevision, moment: datetime, kind: str, data: EventData
    ) -> None:
        ticket.priority = data["priority"]
        self._advance_all(ticket, policy, moment)
        for target in TARGETS:
            self._recompute(ticket, policy, target, moment)

    def _on_assigned(
        self, ticket: TicketSla, policy: PolicyRevision, moment: datetime, kind: str, data: EventData
    ) -> None:
        ticket.group = data.get("group")
        ticket.agent = data.get("agent")
        self._advance_all(ticket, policy, moment)

    def _on_intake_completed(
        self, ticket: TicketSla, policy: PolicyRevision, moment: datetime, kind: str, data: EventData
    ) -> None:
        fields = data.get("fields") or {}
        if "client_account_id" in fields:
            ticket.client_account_id = fields["client_account_id"]
        self._advance_all(ticket, policy, moment)

    def _on_agent_message(
        self, ticket: TicketSla, policy: PolicyRevision, moment: datetime, kind: str, data: EventData
    ) -> None:
        if kind == "PublicNoteAdded" and not policy.public_notes_count_as_response:
            self._advance_all(ticket, policy, moment)
            return
        for target in RESPONSE_TARGETS:
            clock = ticket.running.get(target)
            if clock is not None:
                clock.fulfil(policy.calendar, moment, kind)
                self._finish(ticket, clock)
        ticket.first_response_done = True
        ticket.next_reply_started_at = None
        self._advance_all(ticket, policy, moment)

    def _on_requester_replied(
        self, ticket: TicketSla, policy: PolicyRevision, moment: datetime, kind: str, data: EventData
    ) -> None:
        self._advance_all(ticket, policy, moment)
        if ticket.status != "closed":
            self._start_next_reply(ticket, policy, moment)

    def _on_status_changed(
        self, ticket: TicketSla, policy: PolicyRevision, moment: datetime, kind: str, data: EventData
    ) -> None:
        self._set_status(ticket, policy, data["status"], moment)

    def _on_resolved(
        self, ticket: TicketSla, policy: PolicyRevision, moment: datetime, kind: str, data: EventData
    ) -> None:
        clock = ticket.running.get("resolution")
        if clock is not None:
            clock.fulfil(policy.calendar, moment, kind)
            self._finish(ticket, clock)
        ticket.resolution_started_at = None
        self._set_status(ticket, policy, "resolved", moment)

    def _on_closed(
        self, ticket: TicketSla, policy: PolicyRevision, moment: datetime, kind: str, data: EventData
    ) -> None:
        for clock in list(ticket.running.values()):
            clock.fulfil(policy.calendar, moment, kind)
            self._finish(ticket, clock)
        ticket.first_response_done = True
        ticket.next_reply_started_at = None
        ticket.resolution_started_at = None
        self._set_status(ticket, policy, "closed", moment)

    def _on_reopened(
        self, ticket: TicketSla, policy: PolicyRevision, moment: datetime, kind: str, data: EventData
    ) -> None:
        # A rejected resolution counts as a reopen: the ticket is open again, its
        # resolution is measured anew, and it waits on an agent.
        self._set_status(ticket, policy, "open", moment)
        if ticket.resolution_started_at is None:
            ticket.resolution_cycle += 1
            ticket.resolution_started_at = moment
            self._start(ticket, policy, "resolution", moment)
        self._start_next_reply(ticket, policy, moment)

    def _on_sla_flagged(
        self, ticket: TicketSla, policy: PolicyRevision, moment: datetime, kind: str, data: EventData
    ) -> None:
        flag = "at_risk" if kind == "SlaAtRisk" else "breached"
        target = data["target"]
        cycle = int(data["cycle"])
        clock = ticket.running.get(target)
        if clock is not None and clock.cycle == cycle:
            if flag == "at_risk":
                clock.at_risk_flagged = True
            else:
                clock.breach_flagged = True
            ticket.changed[clock.key] = clock
        # The flagged clock may be finished already, so the view marks its stored row too.
        ticket.flags.append((flag, target, cycle))

    # Steps shared by the handlers.

    def _advance_all(self, ticket: TicketSla, policy: PolicyRevision, moment: datetime) -> None:
        for clock in ticket.running.values():
            clock.advance(policy.calendar, moment)
            clock.group = ticket.group
            clock.agent = ticket.agent
            clock.client_account_id = ticket.client_account_id
            ticket.changed[clock.key] = clock

    def _set_status(self, ticket: TicketSla, policy: PolicyRevision, status: str, moment: datetime) -> None:
        ticket.status = status
        ticket.status_log.append((moment, status))
        self._advance_all(ticket, policy, moment)
        for target, clock in ticket.running.items():
            if status in policy.pause_set(target):
                clock.pause(policy.calendar, moment)
            else:
                clock.resume(policy.calendar, moment)

    def _start_next_reply(self, ticket: TicketSla, policy: PolicyRevision, moment: datetime) -> None:
        if not ticket.first_response_done or ticket.next_reply_started_at is not None:
            return
        ticket.next_reply_cycle += 1
        ticket.next_reply_started_at = moment
        self._start(ticket, policy, "next_reply", moment)

    def _start(self, ticket: TicketSla, policy: PolicyRevision, target: str, moment: datetime) -> None:
        clock = self._build(ticket, policy, target, moment)
        if clock is not None:
            ticket.running[target] = clock
            ticket.changed[clock.key] = clock

    def _recompute(self, ticket: TicketSla, policy: PolicyRevision, target: str, moment: datetime) -> None:
        """Measure the target's current cycle again from its start, with the ticket's priority."""
        if ticket.cycle_started_at(target) is None:
            return
        old = ticket.running.pop(target, None)
        clock = self._build(ticket, policy, target, moment)
        if clock is None:
            # The new priority has no such target, so the row no longer applies.
            if old is not None:
                ticket.changed.pop(old.key, None)
                ticket.removed.add(old.key)
            return
        if old is not None:
            clock.at_risk_flagged = old.at_risk_flagged
            clock.breach_flagged = old.breach_flagged
        ticket.removed.discard(clock.key)
        ticket.running[target] = clock
        ticket.changed[clock.key] = clock

    def _build(
        self, ticket: TicketSla, policy: PolicyRevision, target: str, moment: datetime
    ) -> TargetClock | None:
        """Build the clock of the target's current cycle as of ``moment``, or None without a target."""
        minutes = policy.target_minutes(ticket.priority, target)
        started_at = ticket.cycle_started_at(target)
        if minutes is None or started_at is None:
            return None
        elapsed, paused, paused_since, (at_risk_at, due_at) = measure(
            policy.calendar, started_at, moment, ticket.status_log, policy.pause_set(target),
            marks=(policy.at_risk_ratio * minutes, minutes),
        )
        return TargetClock(
            ticket_id=ticket.ticket_id,
            target=target,
            cycle=ticket.cycle_number(target),
            priority=ticket.priority or DEFAULT_PRIORITY,
            policy_id=policy.policy_id,
            policy_revision=policy.revision,
            target_minutes=minutes,
            at_risk_ratio=policy.at_risk_ratio,
            started_at=started_at,
            as_of=moment,
            elapsed_minutes=elapsed,
            paused_minutes=paused,
            paused_since=paused_since,
            due_at=due_at,
            at_risk_at=at_risk_at,
            channel=ticket.channel,
            group=ticket.group,
            agent=ticket.agent,
            client_account_id=ticket.client_account_id,
        )

    def _finish(self, ticket: TicketSla, clock: TargetClock) -> None:
        ticket.running.pop(clock.target, None)
        ticket.changed[clock.key] = clock


_HANDLERS: dict[str, Callable[..., None]] = {
    "Prioritized": SlaEngine._on_prioritized,
    "Assigned": SlaEngine._on_assigned,
    "Reassigned": SlaEngine._on_assigned,
    "IntakeDataCompleted": SlaEngine._on_intake_completed,
    "AgentReplied": SlaEngine._on_agent_message,
    "ClarificationRequested": SlaEngine._on_agent_message,
    "PublicNoteAdded": SlaEngine._on_agent_message,
    "RequesterReplied": SlaEngine._on_requester_replied,
    "StatusChanged": SlaEngine._on_status_changed,
    "Resolved": SlaEngine._on_resolved,
    "Closed": SlaEngine._on_closed,
    "Reopened": SlaEngine._on_reopened,
    "ResolutionRejected": SlaEngine._on_reopened,
    "SlaAtRisk": SlaEngine._on_sla_flagged,
    "SlaBreached": SlaEngine._on_sla_flagged,
}

# Ticket event names the engine reacts to, besides "Opened".
HANDLED_EVENTS = frozenset(_HANDLERS)
