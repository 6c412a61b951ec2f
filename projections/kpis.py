"""KPIs computed from the view tables, with the standard service-desk definitions.

Each KPI row covers the tickets opened in ``[since, until)`` that match the
filters, grouped by one dimension. The definitions:

- ``first_response_hours_*``: opened to the first public agent message, in
  calendar hours (see :mod:`projections.tickets`). ``first_response_business_hours_*``
  is the SLA view's business time for the first-response target, when that view exists.
- ``first_resolution_hours_*`` and ``resolution_hours_*``: opened to the first and
  to the final resolution, over tickets that have one.
- ``fcr``: share of tickets with a first resolution that meet the FCR definition
  (``FCR_DEFINITIONS``); ``fcr_definition`` names the one used.
- ``csat``: share of rated tickets whose latest rating is satisfied (4-5 of 5, or "good").
- ``ces``: mean latest effort score on the 1-7 scale; ``ces_1_5`` for the 1-5 scale.
  The two scales are kept apart rather than rescaled.
- ``nps``: percent promoters (9-10) minus percent detractors (0-6) among the
  client accounts' NPS responses given in ``[since, until)``. A response
  belongs to a client, not to a ticket, so NPS is null when grouping or
  filtering by anything but the client or a period.
- ``reopen_rate``, ``escalation_rate``: share of tickets reopened, escalated at least once.
- ``repeat_issue_rate``: share of tickets opened within ``repeat_window_days``
  after another ticket of the same client and category was first resolved.
- ``sla_adherence[_TARGET]``: met targets over measured targets (met, missed or
  breached) in the SLA view; null when that view does not exist.
- ``source_sla_adherence``: share of tickets whose latest ``made_sla`` fact from
  the source system is true, among the tickets that have one.
- ``*_p50``, ``*_p90``: percentiles by linear interpolation between closest
  ranks (numpy's and pandas' default).
- ``*_stddev``: the population standard deviation. ``*_cv``: the standard
  deviation over the mean.

Periods (``day``, ``week`` starting on Monday, ``month``) are UTC and group
tickets by their opening time.
"""

from __future__ import annotations

import bisect
import json
import logging
import math
import re
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime, timezone
from typing import Any

from hub.domain import ClientAccount
from hub.domain.vocabulary import CHANNELS, OPEN_STATUSES, PRIORITIES, SLA_TARGETS
from projections.db import Cursor, Database, table_exists
from projections.runner import EventPage, View
from projections.tickets import TicketFactsView, iso_utc, period_labels

logger = logging.getLogger(__name__)

# Dimension name -> ticket_facts column.
DIMENSIONS = {
    "priority": "priority",
    "channel": "channel",
    "category": "category",
    "group": "group_name",
    "agent": "agent",
    "client": "client_account_id",
    "day": "opened_day",
    "week": "opened_week",
    "month": "opened_month",
}
PERIODS = ("day", "week", "month")

FCR_DEFINITIONS = {
    "default": "resolved with one public agent reply and never reopened",
    "one_reply": "resolved with one public agent reply, reopened or not",
    "never_reopened": "resolved and never reopened, with any number of replies",
}

DEFAULT_REPEAT_WINDOW_DAYS = 30

# SLA target states in the SLA view that count as measured, and the one that counts as met.
SLA_MEASURED_STATES = ("met", "missed", "breached")
SLA_MET_STATE = "met"
SLA_TABLE = "sla_targets"

# Filters that also select NPS responses, and the nps_responses column each one compares.
NPS_FILTER_COLUMNS = {"client": "client_account_id", "day": "day", "week": "week", "month": "month"}

TICKET_COLUMNS = (
    "ticket_id", "priority", "channel", "category", "group_name", "agent", "client_account_id",
    "opened_day", "opened_week", "opened_month", "opened_epoch", "status",
    "first_response_hours", "first_resolution_hours", "resolution_hours", "first_resolved_epoch",
    "public_reply_count", "reopen_count", "rejection_count", "reassignment_count",
    "escalation_count", "csat_satisfied", "ces_score", "ces_scale", "made_sla",
)
_COLUMN_INDEX = {name: index for index, name in enumerate(TICKET_COLUMNS)}


class KpiQueryError(ValueError):
    """A KPI query argument is invalid; the message names it and the accepted values."""


# Filter values of the dimensions with a fixed vocabulary or form. Any other
# value matches no ticket, so it is rejected as a mistake rather than returning
# empty figures.
FILTER_CHOICES = {"priority": PRIORITIES, "channel": CHANNELS}
_DAY_FORM = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}")
_MONTH_FORM = re.compile(r"[0-9]{4}-(0[1-9]|1[0-2])")


def check_filter_value(name: str, value: Any) -> None:
    """Raise KpiQueryError unless ``value`` is a possible value of the ``name`` dimension.

    None (tickets without a value) and any text for the free-text dimensions
    pass. The message names the dimension, the value and the accepted form.
    """
    if value is None:
        return
    if name in FILTER_CHOICES:
        if value not in FILTER_CHOICES[name]:
            msg = f"{name} {value!r} is invalid; use one of {', '.join(FILTER_CHOICES[name])}"
            raise KpiQueryError(msg)
    elif name == "month":
        if not isinstance(value, str) or not _MONTH_FORM.fullmatch(value):
            msg = f"month {value!r} is invalid; use a UTC month such as 2024-03"
            raise KpiQueryError(msg)
    elif name in ("day", "week"):
        day = _parse_day(value)
        if day is None:
            msg = f"{name} {value!r} is invalid; use a date such as 2024-03-04"
            raise KpiQueryError(msg)
        if name == "week" and day.weekday() != 0:
            msg = f"week {value!r} is not a Monday; name a week by the date of its Monday, such as 2024-03-04"
            raise KpiQueryError(msg)


def _parse_day(value: Any) -> date | None:
    if not isinstance(value, str) or not _DAY_FORM.fullmatch(value):
        return None
    try:
        return date.fromisoformat(value)
    except ValueError:
        return None


# Statistics.

def percentile(sorted_values: Sequence[float], fraction: float) -> float | None:
    """Return the percentile of sorted values by linear interpolation between closest ranks.

    The rank is ``(n - 1) * fraction``, as in numpy's and pandas' default method.
    """
    if not sorted_values:
        return None
    rank = (len(sorted_values) - 1) * fraction
    lower = math.floor(rank)
    upper = min(lower + 1, len(sorted_values) - 1)
    weight = rank - lower
    return sorted_values[lower] + (sorted_values[upper] - sorted_values[lower]) * weight


def spread(values: list[float], prefix: str) -> dict[str, float | None]:
    """Return p50, p90, mean, population standard deviation and coefficient of variation."""
    values = sorted(values)
    if not values:
        return dict.fromkeys((f"{prefix}_p50", f"{prefix}_p90", f"{prefix}_mean", f"{prefix}_stddev", f"{prefix}_cv"))
    mean = math.fsum(values) / len(values)
    deviations = [value - mean for value in values]
    variance = math.fsum([deviation * deviation for deviation in deviations]) / len(values)
    stddev = math.sqrt(variance)
    return {
        f"{prefix}_p50": percentile(values, 0.5),
        f"{prefix}_p90": percentile(values, 0.9),
        f"{prefix}_mean": mean,
        f"{prefix}_stddev": stddev,
        f"{prefix}_cv": stddev / mean if mean else None,
    }


def share(part: int, whole: int) -> float | None:
    return part / whole if whole else None


# Inputs read from the views.

@dataclass
class KpiInputs:
    """Rows the KPIs are computed from, read in one transaction."""

    tickets: list[tuple[Any, ...]]
    # (client, category) -> sorted first-resolution epochs of all tickets, for repeat issues.
    resolutions: dict[tuple[str, str], list[float]]
    # ticket_id -> [(target, cycle, state, elapsed_business_minutes)], or None without an SLA view.
    sla: dict[str, list[tuple[Any, ...]]] | None
    # (client_account_id, score, day, week, month), or None when a filter makes NPS meaningless.
    nps: list[tuple[Any, ...]] | None = field(default_factory=list)


def check_arguments(
    group_by: str | None, filters: dict[str, Any] | None, fcr_definition: str, repeat_window_days: float
) -> None:
    if group_by is not None and group_by not in DIMENSIONS:
        msg = f"group_by {group_by!r} is invalid; use one of {', '.join(DIMENSIONS)}"
        raise KpiQueryError(msg)
    for name, value in (filters or {}).items():
        if name not in DIMENSIONS:
            msg = f"filter {name!r} is invalid; use one of {', '.join(DIMENSIONS)}"
            raise KpiQueryError(msg)
        check_filter_value(name, value)
    if fcr_definition not in FCR_DEFINITIONS:
        msg = f"fcr_definition {fcr_definition!r} is invalid; use one of {', '.join(FCR_DEFINITIONS)}"
        raise KpiQueryError(msg)
    if isinstance(repeat_window_days, bool) or not isinstance(repeat_window_days, (int, float)) or repeat_window_days <= 0:
        msg = f"repeat_window_days {repeat_window_days!r} is invalid; use a positive number of days"
        raise KpiQueryError(msg)


def load_inputs(
    cursor: Cursor, since: datetime | None = None, until: datetime | None = None,
    filters: dict[str, Any] | None = None,
) -> KpiInputs:
    """Read the tickets opened in ``[since, until)`` that match ``filters``, with their SLA targets and the NPS responses."""
    conditions: list[str] = []
    params: list[Any] = []
    if since is not None:
        conditions.append("opened_at >= ?")
        params.append(iso_utc(since))
    if until is not None:
        conditions.append("opened_at < ?")
        params.append(iso_utc(until))
    for name, value in (filters or {}).items():
        column = DIMENSIONS[name]
        if value is None:
            conditions.append(f"{column} IS NULL")
        else:
            conditions.append(f"{column} = ?")
            params.append(value)
    where = f" WHERE {' AND '.join(conditions)}" if conditions else ""
    cursor.execute(f"SELECT {', '.join(TICKET_COLUMNS)} FROM ticket_facts{where}", params)
    tickets = cursor.fetchall()

    cursor.execute(
        "SELECT client_account_id, category, first_resolved_epoch FROM ticket_facts "
        "WHERE first_resolved_epoch IS NOT NULL AND client_account_id IS NOT NULL AND category IS NOT NULL"
    )
    resolutions: dict[tuple[str, str], list[float]] = {}
    for client, category, resolved_epoch in cursor.fetchall():
        resolutions.setdefault((client, category), []).append(resolved_epoch)
    for epochs in resolutions.values():
        epochs.sort()

    sla: dict[str, list[tuple[Any, ...]]] | None = None
    if table_exists(cursor, SLA_TABLE):
        sla = {}
        cursor.execute(f"SELECT ticket_id, target, cycle, state, elapsed_business_minutes FROM {SLA_TABLE}")
        for ticket_id, target, cycle, state, minutes in cursor.fetchall():
            sla.setdefault(canonical_uuid(str(ticket_id)), []).append((target, cycle, state, minutes))

    nps_conditions: list[str] = []
    nps_params: list[Any] = []
    if since is not None:
        nps_conditions.append("occurred_at >= ?")
        nps_params.append(iso_utc(since))
    if until is not None:
        nps_conditions.append("occurred_at < ?")
        nps_params.append(iso_utc(until))
    for name, value in (filters or {}).items():
        column = NPS_FILTER_COLUMNS.get(name)
        if column is None:
            continue
        nps_conditions.append(f"{column} IS NULL" if value is None else f"{column} = ?")
        if value is not None:
            nps_params.append(value)
    nps_where = f" WHERE {' AND '.join(nps_conditions)}" if nps_conditions else ""
    nps: list[tuple[Any, ...]] | None = []
    if any(name not in NPS_FILTER_COLUMNS for name in filters or {}):
        # A response belongs to a client account, not to a ticket's priority or agent.
        nps = None
    elif table_exists(cursor, "nps_responses"):
        cursor.execute(
            f"SELECT client_account_id, score, day, week, month FROM nps_responses{nps_where}", nps_params
        )
        nps = cursor.fetchall()
    return KpiInputs(tickets, resolutions, sla, nps)


def canonical_uuid(text: str) -> str:
    """Return a UUID in its hyphenated form, as ticket_facts stores it, also when given 32 hex digits."""
    if len(text) == 32:
        return f"{text[:8]}-{text[8:12]}-{text[12:16]}-{text[16:20]}-{text[20:]}"
    return text


# Computation.

def is_first_contact_resolution(row: Sequence[Any], definition: str) -> bool:
    one_reply = row[_COLUMN_INDEX["public_reply_count"]] == 1
    never_reopened = row[_COLUMN_INDEX["reopen_count"]] == 0 and row[_COLUMN_INDEX["rejection_count"]] == 0
    if definition == "one_reply":
        return one_reply
    if definition == "never_reopened":
        return never_reopened
    return one_reply and never_reopened


def is_repeat_issue(row: Sequence[Any], resolutions: dict[tuple[str, str], list[float]], window_seconds: float) -> bool:
    """Tell whether another ticket of the same client and category was first resolved in the window before this one opened."""
    client = row[_COLUMN_INDEX["client_account_id"]]
    category = row[_COLUMN_INDEX["category"]]
    opened = row[_COLUMN_INDEX["opened_epoch"]]
    if client is None or category is None or opened is None:
        return False
    epochs = resolutions.get((client, category))
    if not epochs:
        return False
    # Resolutions r with opened - window <= r < opened.
    count = bisect.bisect_left(epochs, opened) - bisect.bisect_left(epochs, opened - window_seconds)
    own = row[_COLUMN_INDEX["first_resolved_epoch"]]
    if own is not None and opened - window_seconds <= own < opened:
        count -= 1
    return count > 0


@dataclass
class KpiColumns:
    """Every ticket's KPI contribution, one list per measure with one entry per ticket.

    Built once by :func:`ticket_kpis` and then grouped by any dimension. Flags
    and counts are 0 or 1 integers, so a group's total is a sum. Durations are
    hours or None.
    """

    dimensions: dict[str, list[Any]]
    durations: dict[str, list[float | None]]
    counts: dict[str, list[int]]
    ces_7: list[int | None]
    ces_5: list[int | None]
    reassignments: list[int]

    def __len__(self) -> int:
        return len(self.reassignments)


# The 0/1 flags counted per group, besides the SLA targets.
COUNTED = (
    "open", "resolved", "fcr", "csat_rated", "csat_satisfied", "reopened", "repeat_issue",
    "escalated", "made_sla_known", "made_sla_true",
)
DURATIONS = ("first_response_hours", "first_response_business_hours", "first_resolution_hours", "resolution_hours")


def ticket_kpis(
    inputs: KpiInputs, fcr_definition: str = "default", repeat_window_days: float = DEFAULT_REPEAT_WINDOW_DAYS
) -> KpiColumns:
    """Derive every ticket's KPI contribution from the inputs."""
    index = _COLUMN_INDEX
    window_seconds = repeat_window_days * 86400.0
    tickets = inputs.tickets
    dimensions = {name: [row[index[column]] for row in tickets] for name, column in DIMENSIONS.items()}
    durations: dict[str, list[float | None]] = {
        name: [row[index[name]] for row in tickets] for name in DURATIONS if name in index
    }
    counts: dict[str, list[int]] = {name: [] for name in COUNTED}
    for target in SLA_TARGETS:
        counts[f"sla_measured_{target}"] = []
        counts[f"sla_met_{target}"] = []
    business_hours: list[float | None] = []

    for row in tickets:
        resolved = row[index["first_resolved_epoch"]] is not None
        satisfied = row[index["csat_satisfied"]]
        made_sla = row[index["made_sla"]]
        counts["open"].append(int(row[index["status"]] in OPEN_STATUSES))
        counts["resolved"].append(int(resolved))
        counts["fcr"].append(int(resolved and is_first_contact_resolution(row, fcr_definition)))
        counts["csat_rated"].append(int(satisfied is not None))
        counts["csat_satisfied"].append(satisfied or 0)
        counts["reopened"].append(int(row[index["reopen_count"]] > 0))
        counts["repeat_issue"].append(int(is_repeat_issue(row, inputs.resolutions, window_seconds)))
        counts["escalated"].append(int(row[index["escalation_count"]] > 0))
        counts["made_sla_known"].append(int(made_sla is not None))
        counts["made_sla_true"].append(made_sla or 0)

        targets = inputs.sla.get(row[index["ticket_id"]], ()) if inputs.sla is not None else ()
        measured, met, hours = _sla_results(targets)
        for target in SLA_TARGETS:
            counts[f"sla_measured_{target}"].append(measured.get(target, 0))
            counts[f"sla_met_{target}"].append(met.get(target, 0))
        business_hours.append(hours)

    durations["first_response_business_hours"] = business_hours
    ces_scores = [row[index["ces_score"]] for row in tickets]
    ces_scales = [row[index["ces_scale"]] for row in tickets]
    return KpiColumns(
        dimensions=dimensions,
        durations=durations,
        counts=counts,
        ces_7=[score if scale == "1-7" else None for score, scale in zip(ces_scores, ces_scales)],
        ces_5=[score if scale == "1-5" else None for score, scale in zip(ces_scores, ces_scales)],
        reassignments=[row[index["reassignment_count"]] for row in tickets],
    )


def _sla_results(targets: Iterable[tuple[Any, ...]]) -> tuple[dict[str, int], dict[str, int], float | None]:
    """Count a ticket's measured and met SLA targets, and take the business hours of its first first-response cycle."""
    measured: dict[str, int] = {}
    met: dict[str, int] = {}
    first_response_cycles: list[tuple[int, float]] = []
    for target, cycle, state, minutes in targets:
        if state not in SLA_MEASURED_STATES:
            continue
        measured[target] = measured.get(target, 0) + 1
        met[target] = met.get(target, 0) + (state == SLA_MET_STATE)
        if target == "first_response" and minutes is not None:
            first_response_cycles.append((cycle, minutes))
    hours = min(first_response_cycles)[1] / 60.0 if first_response_cycles else None
    return measured, met, hours


def compute_rows(
    inputs: KpiInputs, group_by: str | None = None, fcr_definition: str = "default",
    repeat_window_days: float = DEFAULT_REPEAT_WINDOW_DAYS, columns: KpiColumns | None = None,
) -> list[dict[str, Any]]:
    """Compute the KPI rows of one grouping from inputs read by :func:`load_inputs`.

    ``columns`` may pass the result of :func:`ticket_kpis` for the same inputs
    and definitions, so that several groupings derive it once.
    """
    if columns is None:
        columns = ticket_kpis(inputs, fcr_definition, repeat_window_days)
    groups: dict[Any, list[int]] = {}
    if group_by is None:
        groups[None] = list(range(len(columns)))
    else:
        for position, key in enumerate(columns.dimensions[group_by]):
            members = groups.get(key)
            if members is None:
                groups[key] = [position]
            else:
                members.append(position)

    nps_applies = inputs.nps is not None and (group_by is None or group_by == "client" or group_by in PERIODS)
    nps_groups: dict[Any, list[int]] = {}
    if nps_applies and inputs.nps is not None:
        nps_key = {"client": 0, "day": 2, "week": 3, "month": 4}.get(group_by or "")
        for response in inputs.nps:
            key = response[nps_key] if nps_key is not None else None
            nps_groups.setdefault(key, []).append(response[1])
            groups.setdefault(key, [])

    has_sla = inputs.sla is not None
    rows = [
        _row(group_by, key, members, columns, nps_groups.get(key, []), fcr_definition, repeat_window_days,
             has_sla, nps_applies)
        for key, members in groups.items()
    ]
    rows.sort(key=lambda row: _sort_key(group_by, row.get(group_by) if group_by else None))
    return rows


def _mean(values: list[int]) -> float | None:
    return math.fsum(values) / len(values) if values else None


def _present(values: list[Any], members: list[int]) -> list[Any]:
    """Return the values of the members that are not None."""
    return [value for value in map(values.__getitem__, members) if value is not None]


def _row(
    group_by: str | None, key: Any, members: list[int], columns: KpiColumns, nps_scores: list[int],
    fcr_definition: str, repeat_window_days: float, has_sla: bool, nps_applies: bool,
) -> dict[str, Any]:
    def total(name: str) -> int:
        return sum(map(columns.counts[name].__getitem__, members))

    tickets = len(members)
    resolved = total("resolved")
    rated = total("csat_rated")

    row: dict[str, Any] = {}
    if group_by is not None:
        row[group_by] = key
    row["tickets"] = tickets
    row["open"] = total("open")
    row["resolved"] = resolved
    row.update(spread(_present(columns.durations["first_response_hours"], members), "first_response_hours"))
    business = spread(
        _present(columns.durations["first_response_business_hours"], members), "first_response_business_hours"
    )
    row["first_response_business_hours_p50"] = business["first_response_business_hours_p50"]
    row["first_response_business_hours_p90"] = business["first_response_business_hours_p90"]
    row.update(spread(_present(columns.durations["first_resolution_hours"], members), "first_resolution_hours"))
    row.update(spread(_present(columns.durations["resolution_hours"], members), "resolution_hours"))
    row["fcr"] = share(total("fcr"), resolved)
    row["fcr_definition"] = fcr_definition
    row["csat"] = share(total("csat_satisfied"), rated)
    row["csat_responses"] = rated
    ces_7 = _present(columns.ces_7, members)
    ces_5 = _present(columns.ces_5, members)
    row["ces"] = _mean(ces_7)
    row["ces_responses"] = len(ces_7)
    row["ces_1_5"] = _mean(ces_5)
    row["ces_1_5_responses"] = len(ces_5)
    if nps_applies and nps_scores:
        promoters = sum(1 for score in nps_scores if score >= 9)
        detractors = sum(1 for score in nps_scores if score <= 6)
        row["nps"] = 100.0 * (promoters - detractors) / len(nps_scores)
    else:
        row["nps"] = None
    row["nps_responses"] = len(nps_scores) if nps_applies else None
    row["reopen_rate"] = share(total("reopened"), tickets)
    row["repeat_issue_rate"] = share(total("repeat_issue"), tickets)
    row["repeat_window_days"] = repeat_window_days
    row["escalation_rate"] = share(total("escalated"), tickets)
    row["reassignments_mean"] = share(sum(map(columns.reassignments.__getitem__, members)), tickets)
    if has_sla:
        measured = {target: total(f"sla_measured_{target}") for target in SLA_TARGETS}
        met = {target: total(f"sla_met_{target}") for target in SLA_TARGETS}
        row["sla_adherence"] = share(sum(met.values()), sum(measured.values()))
        for target in SLA_TARGETS:
            row[f"sla_adherence_{target}"] = share(met[target], measured[target])
    else:
        row["sla_adherence"] = None
        for target in SLA_TARGETS:
            row[f"sla_adherence_{target}"] = None
    row["source_sla_adherence"] = share(total("made_sla_true"), total("made_sla_known"))
    return row


def _sort_key(group_by: str | None, value: Any) -> tuple[int, Any]:
    if value is None:
        return (2, "")
    if group_by == "priority" and value in PRIORITIES:
        return (0, PRIORITIES.index(value))
    return (1, str(value))


# The NPS view.

class NpsView(View):
    """Every NPS response of every client account, for the NPS KPI."""

    name = "nps"
    tables = ("nps_responses",)
    topics = (ClientAccount.NpsResponded,)

    def create(self, cursor: Cursor) -> None:
        cursor.execute(
            "CREATE TABLE IF NOT EXISTS nps_responses ("
            "position BIGINT PRIMARY KEY, client_account_id TEXT NOT NULL, score INTEGER NOT NULL, "
            "contact_id TEXT, occurred_at TEXT NOT NULL, day TEXT NOT NULL, week TEXT NOT NULL, "
            "month TEXT NOT NULL)"
        )

    def apply_page(self, cursor: Cursor, events: EventPage) -> None:
        rows = []
        for position, event in events:
            day, week, month = period_labels(event.occurred_at)
            rows.append((
                position, str(event.originator_id), event.score, event.contact_id,
                iso_utc(event.occurred_at), day, week, month,
            ))
        cursor.executemany(
            "INSERT INTO nps_responses (position, client_account_id, score, contact_id, occurred_at, day, week, month) "
            "VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
            rows,
        )


# The precomputed summary.

SUMMARY_DIMENSIONS: tuple[str | None, ...] = (None, *DIMENSIONS)
ALL_KEY = "*"


class KpiSummaryView(View):
    """KPI rows of every single-dimension grouping without filters, recomputed after catch-up.

    Computing KPIs scans every ticket, so a dashboard or ``hub kpi`` reads
    these stored rows instead. Each refresh stores the positions of the views
    it read. :func:`kpis` uses the stored rows only while those positions are
    still current, and computes from the tickets otherwise. Refreshes are
    throttled to at most one per ``min_interval`` seconds, or ten times the
    last refresh's duration when that is longer.
    """

    name = "kpi_summary"
    tables = ("kpi_summary",)
    # Events that change the tables a summary reads; the position check in
    # after_catch_up() covers the other views' tables.
    topics = (*TicketFactsView.topics, *NpsView.topics)
    min_interval = 2.0

    def __init__(self) -> None:
        self._dirty = False
        self._last_refresh = 0.0
        self._last_duration = 0.0

    def create(self, cursor: Cursor) -> None:
        cursor.execute(
            "CREATE TABLE IF NOT EXISTS kpi_summary ("
            "dimension TEXT PRIMARY KEY, rows TEXT NOT NULL, sources TEXT NOT NULL, refreshed_at TEXT NOT NULL)"
        )

    def apply_page(self, cursor: Cursor, events: EventPage) -> None:
        self._dirty = True

    def after_catch_up(self, db: Database) -> None:
        if not self._dirty:
            # Another process may have moved the views on since the last refresh.
            with db.transaction(readonly=True) as cursor:
                if summary_rows(cursor, None) is not None:
                    return
        interval = max(self.min_interval, 10 * self._last_duration)
        if self._last_refresh and time.monotonic() - self._last_refresh < interval:
            self._dirty = True
            return
        started = time.monotonic()
        refresh_summary(db)
        self._last_duration = time.monotonic() - started
        self._last_refresh = time.monotonic()
        self._dirty = False
        logger.info("KPI summary refreshed in %.3fs", self._last_duration)


def source_positions(cursor: Cursor) -> dict[str, int]:
    """Return the positions of every view but the summary: the state a summary was computed from."""
    cursor.execute(
        "SELECT name, position FROM projection_positions WHERE name <> ? ORDER BY name", (KpiSummaryView.name,)
    )
    return {name: int(position) for name, position in cursor.fetchall()}


# First key of the PostgreSQL advisory lock that serializes summary refreshes (any fixed int4).
SUMMARY_LOCK_CLASS = 0x4B504953


def refresh_summary(db: Database) -> None:
    """Recompute the stored KPI rows of every grouping from the current views."""
    with db.transaction() as cursor:
        if cursor.dialect == "postgresql":
            # Two workers refreshing at once would both delete and then insert the
            # same keys, and one would fail on the primary key, so refreshes in one
            # schema take turns. On SQLite the write lock of BEGIN IMMEDIATE does this.
            cursor.execute("SELECT pg_advisory_xact_lock(?, hashtext(current_schema()))", (SUMMARY_LOCK_CLASS,))
        sources = source_positions(cursor)
        inputs = load_inputs(cursor)
        refreshed_at = iso_utc(datetime.now(timezone.utc))
        cursor.execute("DELETE FROM kpi_summary")
        columns = ticket_kpis(inputs)
        cursor.executemany(
            "INSERT INTO kpi_summary (dimension, rows, sources, refreshed_at) VALUES (?, ?, ?, ?)",
            [
                (
                    dimension or ALL_KEY, json.dumps(compute_rows(inputs, dimension, columns=columns)),
                    json.dumps(sources), refreshed_at,
                )
                for dimension in SUMMARY_DIMENSIONS
            ],
        )


def summary_rows(cursor: Cursor, group_by: str | None) -> list[dict[str, Any]] | None:
    """Return the stored rows of a grouping if they are current, else None."""
    if not table_exists(cursor, "kpi_summary"):
        return None
    cursor.execute("SELECT rows, sources FROM kpi_summary WHERE dimension = ?", (group_by or ALL_KEY,))
    stored = cursor.fetchone()
    if stored is None:
        return None
    if json.loads(stored[1]) != source_positions(cursor):
        return None
    rows: list[dict[str, Any]] = json.loads(stored[0])
    return rows


def kpis(
    db: Database,
    group_by: str | None = None,
    since: datetime | None = None,
    until: datetime | None = None,
    filters: dict[str, Any] | None = None,
    fcr_definition: str = "default",
    repeat_window_days: float = DEFAULT_REPEAT_WINDOW_DAYS,
) -> list[dict[str, Any]]:
    """Return KPI rows for the tickets opened in ``[since, until)`` that match ``filters``.

    ``group_by`` is one of ``DIMENSIONS``, or None for one overall row. Each row
    contains the group's value under the dimension's name, then the metrics
    described in this module's docstring. ``filters`` maps dimensions to values,
    for example ``{"priority": "high", "channel": "email"}``. Raises
    KpiQueryError for an unknown dimension, filter or FCR definition, and for a
    filter value that ``check_filter_value`` rejects.
    """
    check_arguments(group_by, filters, fcr_definition, repeat_window_days)
    with db.transaction(readonly=True) as cursor:
        defaults = (
            since is None and until is None and not filters and fcr_definition == "default"
            and repeat_window_days == DEFAULT_REPEAT_WINDOW_DAYS
        )
        if defaults:
            stored = summary_rows(cursor, group_by)
            if stored is not None:
                return stored
        inputs = load_inputs(cursor, since, until, filters)
    return compute_rows(inputs, group_by, fcr_definition, repeat_window_days)
