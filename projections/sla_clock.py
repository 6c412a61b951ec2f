"""The SLA clock: record "SLA at risk" and "SLA breached" events as deadlines pass.

The SLA view stores every running clock's at-risk and due time. The clock job
reads the rows whose time has passed and records ``Ticket.SlaAtRisk`` or
``Ticket.SlaBreached`` through the application, so the alert reaches the audit
trail and the webhooks like any other event. ``Ticket.flag_sla`` records each
kind of alert once per ticket, target and cycle, so running the job twice, or
in two processes, records nothing twice.

Run it in one process, next to a projection runner that keeps the SLA view up
to date: a reply the view has not applied yet cannot stop an alert.
"""

from __future__ import annotations

import logging
from datetime import datetime, timezone
from typing import Any
from uuid import UUID

from hub.domain import Context, Ticket
from hub.domain.errors import DomainError
from projections.db import Database
from projections.sla import iso_utc, parse_time

logger = logging.getLogger(__name__)

JOB_ID = "sla-clock"
CLOCK_ACTOR = "sla-clock"

# Maximum number of alerts one run records. The rest wait for the next run, so
# a run stays short after a long outage or an import of old open tickets.
DEFAULT_BATCH_SIZE = 500

# Running clocks whose due time has passed without a breach alert, or whose
# at-risk time has passed without an at-risk alert while they are still
# running unpaused and not yet due.
SELECT_DUE_ROWS = """
SELECT ticket_id, target, cycle, due_at, at_risk_at, breach_flagged
FROM sla_targets
WHERE fulfilled_at IS NULL
  AND ((breach_flagged = 0 AND due_at < ?)
       OR (at_risk_flagged = 0 AND paused_since IS NULL AND at_risk_at <= ? AND due_at >= ?))
ORDER BY COALESCE(due_at, at_risk_at), ticket_id, target, cycle
LIMIT ?
"""


def check_sla_deadlines(
    app: Any,
    db: Database,
    now: datetime,
    *,
    runner: Any | None = None,
    batch_size: int = DEFAULT_BATCH_SIZE,
) -> dict[str, int]:
    """Record the SLA alerts whose time has come by ``now`` and return counts.

    A clock that is already past its due time gets only the breach alert: a
    warning after the fact would add nothing. Each alert's ``occurred_at`` is the
    at-risk or due time itself, not the time the job ran. When ``runner`` is
    given, it brings the views up to date first.

    Returns the counts ``at_risk`` and ``breached`` (alerts recorded),
    ``already_recorded`` (alerts the ticket had already) and ``failed``.
    """
    if now.tzinfo is None or now.utcoffset() is None:
        msg = f"now must be timezone-aware, got the naive value {now.isoformat()}; add an offset such as +00:00"
        raise ValueError(msg)
    if runner is not None:
        runner.catch_up()
    now_text = iso_utc(now)
    with db.transaction(readonly=True) as cursor:
        cursor.execute(SELECT_DUE_ROWS, (now_text, now_text, now_text, batch_size))
        rows = cursor.fetchall()

    counts = {"at_risk": 0, "breached": 0, "already_recorded": 0, "failed": 0}
    for ticket_hex, target, cycle, due_text, at_risk_text, breach_flagged in rows:
        due_at = parse_time(due_text)
        assert due_at is not None
        if due_at < now and not breach_flagged:
            kind, moment = "breached", due_at
        else:
            kind, moment = "at_risk", parse_time(at_risk_text)
        ticket_id = UUID(ticket_hex)
        ctx = Context(
            actor_kind="system", actor_id=CLOCK_ACTOR, source_name=CLOCK_ACTOR, occurred_at=moment,
        )
        try:
            outcome = app.execute(
                Ticket, ticket_id, "flag_sla", ctx, kind=kind, target=target, cycle=int(cycle), due_at=due_at,
            )
        except DomainError:
            logger.exception(
                "Recording SLA %s for ticket %s, %s cycle %s failed", kind, ticket_id, target, cycle,
            )
            counts["failed"] += 1
            continue
        if outcome.positions:
            logger.info(
                "SLA %s recorded for ticket %s, %s cycle %s (due %s)",
                kind, ticket_id, target, cycle, due_at.isoformat(),
            )
            counts[kind] += 1
        else:
            counts["already_recorded"] += 1
    return counts


def run_sla_check(app: Any, db: Database, runner: Any | None = None) -> dict[str, int]:
    """Check the SLA deadlines as of the current time; this is what the scheduled job runs."""
    counts = check_sla_deadlines(app, db, datetime.now(tz=timezone.utc), runner=runner)
    if counts["at_risk"] or counts["breached"] or counts["failed"]:
        logger.info(
            "SLA clock recorded %d at-risk and %d breach alerts (%d already recorded, %d failed)",
            counts["at_risk"], counts["breached"], counts["already_recorded"], counts["failed"],
        )
    return counts


def add_sla_job(
    scheduler: Any, app: Any, db: Database, interval_seconds: float = 60, runner: Any | None = None,
) -> Any:
    """Schedule :func:`run_sla_check` every ``interval_seconds`` on an APScheduler 3 scheduler.

    One run at a time (``max_instances=1``), and runs missed while the
    scheduler was busy collapse into one (``coalesce=True``). Returns the job.
    """
    if interval_seconds <= 0:
        msg = f"interval_seconds must be positive, got {interval_seconds!r}"
        raise ValueError(msg)
    return scheduler.add_job(
        run_sla_check,
        trigger="interval",
        seconds=interval_seconds,
        args=(app, db, runner),
        id=JOB_ID,
        name="SLA deadline check",
        max_instances=1,
        coalesce=True,
        replace_existing=True,
    )
