"""KPI definitions, checked against values worked out by hand for a small set of tickets.

The scenario (t0 = Monday 2024-03-04 09:00 UTC; hours after t0):

- T1 high, email, acme/billing: opened 0, automatic acknowledgement by the system
  0.1, reply 2, resolved 5, rated 5 of 5, effort 2 of 7, made_sla true, closed 24.
- T2 high, web, acme/billing: opened 1, escalated 2, reassigned once, reply 5,
  clarification 6, resolved 9, reopened 10, reply 11, resolved 13, rated "bad",
  made_sla false.
- T3 low then critical, email, globex/outage: opened 2, reply 3, resolved 4,
  reopened 5, resolved 6, effort 6 of 7, made_sla true.
- T4 high, phone, acme/billing: opened 6, one hour after T1's resolution (a
  repeat issue), still open.
- T5 high, email, acme/billing: opened 960 (40 days later), replies 961 and 962,
  resolved 963.
- NPS: acme 10, 9, 6, 8; globex 3.
"""

from __future__ import annotations

import json
import math
from datetime import datetime, timedelta, timezone
from uuid import uuid4

import pytest

from hub.cli import main
from hub.domain import ClientAccount, Context, Ticket
from projections.kpis import KpiQueryError, KpiSummaryView, NpsView, kpis, percentile, refresh_summary, spread
from projections.queries import backlog
from projections.runner import ProjectionRunner
from projections.tickets import TicketFactsView

T0 = datetime(2024, 3, 4, 9, 0, tzinfo=timezone.utc)


def at(hours, kind="agent", actor="agent-1"):
    return Context(actor_kind=kind, actor_id=actor, occurred_at=T0 + timedelta(hours=hours))


def run(ticket, command, hours, kind="agent", **arguments):
    getattr(ticket, command)(at(hours, kind), **arguments)


def open_ticket(hours, channel, client, category, priority, group="g1", agent="alice"):
    ticket = Ticket.open(
        at(hours, "requester", "req-1"), ticket_id=uuid4(), subject="Help", channel=channel,
        client_account_id=client,
    )
    run(ticket, "classify", hours, category=category)
    run(ticket, "prioritize", hours, priority=priority)
    run(ticket, "assign", hours, group=group, agent=agent)
    return ticket


def record_scenario(app):
    """Save the scenario in one transaction and return the ids."""
    t1 = open_ticket(0, "email", "acme", "billing", "high")
    run(t1, "reply", 0.1, kind="system", body="We received your request")
    run(t1, "reply", 2, body="Fixed?")
    run(t1, "resolve", 5)
    run(t1, "rate_satisfaction", 6, kind="requester", score=5)
    run(t1, "score_effort", 6, kind="requester", score=2)
    run(t1, "record_fact", 6, kind="integration", name="made_sla", value=True)
    run(t1, "close", 24)

    t2 = open_ticket(1, "web", "acme", "billing", "high", agent="bob")
    run(t2, "escalate", 2, level=2, reason="VIP", owner="lead", promised_by=T0 + timedelta(hours=4))
    run(t2, "assign", 2, group="g2", agent="carol")
    run(t2, "reply", 5, body="Looking")
    run(t2, "request_clarification", 6, body="Which account?")
    run(t2, "resolve", 9)
    run(t2, "reopen", 10, kind="requester")
    run(t2, "reply", 11, body="Second try")
    run(t2, "resolve", 13)
    run(t2, "rate_satisfaction", 14, kind="requester", score="bad", scale="good_bad")
    run(t2, "record_fact", 14, kind="integration", name="made_sla", value=False)

    t3 = open_ticket(2, "email", "globex", "outage", "low")
    run(t3, "prioritize", 2, priority="critical")
    run(t3, "reply", 3, body="Restarting")
    run(t3, "resolve", 4)
    run(t3, "reopen", 5, kind="requester")
    run(t3, "resolve", 6)
    run(t3, "score_effort", 7, kind="requester", score=6)
    run(t3, "record_fact", 7, kind="integration", name="made_sla", value="true")

    t4 = open_ticket(6, "phone", "acme", "billing", "high")

    t5 = open_ticket(960, "email", "acme", "billing", "high")
    run(t5, "reply", 961, body="First")
    run(t5, "reply", 962, body="Second")
    run(t5, "resolve", 963)

    acme = ClientAccount.register(at(0), account_id=uuid4(), organization="Acme")
    globex = ClientAccount.register(at(0), account_id=uuid4(), organization="Globex")
    for score in (10, 9, 6, 8):
        acme.record_nps(at(30), score=score)
    globex.record_nps(at(30), score=3)

    app.save_batch([t1, t2, t3, t4, t5, acme, globex])
    ids = {name: ticket.id for name, ticket in (("t1", t1), ("t2", t2), ("t3", t3), ("t4", t4), ("t5", t5))}
    return {**ids, "acme": str(acme.id), "globex": str(globex.id)}


@pytest.fixture
def scenario(app):
    ids = record_scenario(app)
    # NPS rows name the client account's id; tickets name clients by "acme" and "globex".
    runner = ProjectionRunner(app, [TicketFactsView(), NpsView(), KpiSummaryView()])
    runner.catch_up()
    yield runner.db, ids
    runner.close()


def by_key(rows, key):
    return {row[key]: row for row in rows}


def test_percentile_linear_interpolation():
    assert percentile([1.0, 2.0, 3.0, 4.0], 0.5) == 2.5
    assert percentile([1.0, 2.0, 3.0, 4.0], 0.9) == pytest.approx(3.7)
    assert percentile([7.0], 0.9) == 7.0
    assert percentile([], 0.5) is None


def test_spread_population_deviation():
    result = spread([4.0, 1.0, 3.0, 2.0], "x")

    assert result["x_mean"] == 2.5
    assert result["x_stddev"] == pytest.approx(math.sqrt(1.25))
    assert result["x_cv"] == pytest.approx(math.sqrt(1.25) / 2.5)


def test_first_response_by_priority(scenario):
    db, _ = scenario

    high = by_key(kpis(db, group_by="priority"), "priority")["high"]

    # Replies after 2, 4 and 1 hours; the system acknowledgement does not count.
    assert high["first_response_hours_p50"] == pytest.approx(2.0)
    assert high["first_response_hours_p90"] == pytest.approx(3.6)
    assert high["first_response_hours_mean"] == pytest.approx(7 / 3)
    assert high["first_response_hours_stddev"] == pytest.approx(math.sqrt(14 / 9))
    assert high["first_response_hours_cv"] == pytest.approx(math.sqrt(14 / 9) / (7 / 3))


def test_resolution_times_first_and_final(scenario):
    db, _ = scenario

    high = by_key(kpis(db, group_by="priority"), "priority")["high"]

    # First resolutions after 5, 8 and 3 hours; final ones after 5, 12 and 3.
    assert high["first_resolution_hours_p50"] == pytest.approx(5.0)
    assert high["first_resolution_hours_p90"] == pytest.approx(7.4)
    assert high["resolution_hours_p50"] == pytest.approx(5.0)
    assert high["resolution_hours_p90"] == pytest.approx(10.6)


def test_counts_rates_and_sources_by_priority(scenario):
    db, _ = scenario

    rows = by_key(kpis(db, group_by="priority"), "priority")

    assert list(rows) == ["critical", "high"]
    high, critical = rows["high"], rows["critical"]
    assert (high["tickets"], high["open"], high["resolved"]) == (4, 1, 3)
    assert high["csat"] == 0.5
    assert high["csat_responses"] == 2
    assert high["ces"] == 2.0
    assert high["reopen_rate"] == 0.25
    assert high["escalation_rate"] == 0.25
    assert high["reassignments_mean"] == 0.25
    assert high["source_sla_adherence"] == 0.5
    assert high["repeat_issue_rate"] == 0.25
    assert (critical["tickets"], critical["reopen_rate"], critical["ces"]) == (1, 1.0, 6.0)
    assert critical["source_sla_adherence"] == 1.0
    assert critical["resolution_hours_p50"] == pytest.approx(4.0)
    assert critical["csat"] is None


@pytest.mark.parametrize(
    ("definition", "high", "critical"),
    [("default", 1 / 3, 0.0), ("one_reply", 1 / 3, 1.0), ("never_reopened", 2 / 3, 0.0)],
)
def test_fcr_definitions(scenario, definition, high, critical):
    db, _ = scenario

    rows = by_key(kpis(db, group_by="priority", fcr_definition=definition), "priority")

    assert rows["high"]["fcr"] == pytest.approx(high)
    assert rows["critical"]["fcr"] == pytest.approx(critical)
    assert rows["high"]["fcr_definition"] == definition


def test_repeat_window_is_configurable(scenario):
    db, _ = scenario

    high = by_key(kpis(db, group_by="priority", repeat_window_days=45), "priority")["high"]

    # T5 opened 40 days after T1 and T2 were resolved: a repeat within 45 days.
    assert high["repeat_issue_rate"] == 0.5
    assert high["repeat_window_days"] == 45


def test_nps_by_client_and_overall(scenario):
    db, ids = scenario

    overall = kpis(db)[0]
    clients = by_key(kpis(db, group_by="client"), "client")

    assert overall["nps"] == 0.0
    assert overall["nps_responses"] == 5
    assert clients[ids["acme"]]["nps"] == 25.0
    assert clients[ids["globex"]]["nps"] == -100.0
    assert by_key(kpis(db, group_by="priority"), "priority")["high"]["nps"] is None


def test_month_period_and_since_until(scenario):
    db, _ = scenario

    months = by_key(kpis(db, group_by="month"), "month")
    late = kpis(db, since=T0 + timedelta(days=30))[0]
    early = kpis(db, until=T0 + timedelta(hours=2))[0]

    assert months["2024-03"]["tickets"] == 4
    assert months["2024-04"]["tickets"] == 1
    assert late["tickets"] == 1
    assert late["first_response_hours_p50"] == pytest.approx(1.0)
    # until is exclusive: T3 opened at exactly t0 + 2h.
    assert early["tickets"] == 2


def test_filters_select_tickets(scenario):
    db, _ = scenario

    email = kpis(db, filters={"channel": "email"})[0]
    carol = kpis(db, group_by="agent", filters={"group": "g2"})

    assert email["tickets"] == 3
    assert [(row["agent"], row["tickets"]) for row in carol] == [("carol", 1)]


def test_unknown_dimension_raises(scenario):
    db, _ = scenario

    with pytest.raises(KpiQueryError, match="group_by 'team' is invalid"):
        kpis(db, group_by="team")
    with pytest.raises(KpiQueryError, match="fcr_definition 'strict' is invalid"):
        kpis(db, fcr_definition="strict")


def test_sla_adherence_from_sla_table(scenario):
    db, ids = scenario
    with db.transaction() as cursor:
        cursor.execute(
            "CREATE TABLE sla_targets (ticket_id TEXT, target TEXT, cycle INTEGER, priority TEXT, "
            "state TEXT, elapsed_business_minutes DOUBLE PRECISION)"
        )
        cursor.executemany(
            "INSERT INTO sla_targets VALUES (?, ?, ?, ?, ?, ?)",
            [
                (ids["t1"].hex, "first_response", 1, "high", "met", 90.0),
                (ids["t1"].hex, "resolution", 1, "high", "met", 300.0),
                (ids["t2"].hex, "first_response", 1, "high", "missed", 240.0),
                (ids["t2"].hex, "resolution", 1, "high", "breached", 700.0),
                (ids["t2"].hex, "next_reply", 1, "high", "active", 10.0),
                (ids["t3"].hex, "first_response", 1, "critical", "met", 30.0),
            ],
        )
    refresh_summary(db)

    rows = by_key(kpis(db, group_by="priority"), "priority")

    high = rows["high"]
    assert high["sla_adherence"] == 0.5
    assert high["sla_adherence_first_response"] == 0.5
    assert high["sla_adherence_resolution"] == 0.5
    assert high["sla_adherence_next_reply"] is None
    assert high["first_response_business_hours_p50"] == pytest.approx(2.75)
    assert high["first_response_business_hours_p90"] == pytest.approx(3.75)
    assert rows["critical"]["sla_adherence"] == 1.0


def test_sla_adherence_null_without_sla_view(scenario):
    db, _ = scenario

    row = kpis(db)[0]

    assert row["sla_adherence"] is None
    assert row["first_response_business_hours_p50"] is None


def test_backlog_by_month(scenario):
    db, _ = scenario

    rows = backlog(db, "month")

    # March: 4 opened, 5 resolutions (T1, T3 twice, T2 twice), T4 still open.
    assert rows == [
        {"period": "2024-03", "opened": 4, "resolved": 5, "backlog": 1},
        {"period": "2024-04", "opened": 1, "resolved": 1, "backlog": 1},
    ]


def test_backlog_by_day_fills_gaps(scenario):
    db, _ = scenario

    rows = backlog(db, "day", since=T0 + timedelta(days=39))

    assert rows == [{"period": "2024-04-13", "opened": 1, "resolved": 1, "backlog": 1}]
    assert len(backlog(db, "day")) == 41


def test_summary_matches_live_computation(scenario):
    db, _ = scenario
    refresh_summary(db)

    for dimension in (None, "priority", "client", "week"):
        stored = kpis(db, group_by=dimension)
        live = kpis(db, group_by=dimension, filters={})
        assert json.loads(json.dumps(live)) == stored


def test_stale_summary_is_not_used(app):
    ids = record_scenario(app)
    summary = KpiSummaryView()
    summary.min_interval = 3600.0
    runner = ProjectionRunner(app, [TicketFactsView(), NpsView(), summary])
    runner.catch_up()
    app.execute(Ticket, ids["t4"], "resolve", at(7))

    runner.catch_up()

    high = by_key(kpis(runner.db, group_by="priority"), "priority")["high"]
    assert high["open"] == 0
    assert high["resolved"] == 4
    runner.close()


def test_kpi_command_prints_json_rows(tmp_path, monkeypatch, capsys):
    from hub.application import create_application
    from hub.settings import load_settings

    url = f"sqlite:///{tmp_path}/hub.sqlite3"
    app = create_application(load_settings({"HUB_DATABASE_URL": url}))
    record_scenario(app)
    app.close()
    monkeypatch.setenv("HUB_DATABASE_URL", url)

    code = main(["kpi", "--by", "priority", "--format", "json"])

    assert code == 0
    rows = by_key(json.loads(capsys.readouterr().out), "priority")
    assert set(rows) == {"critical", "high"}
    high = rows["high"]
    assert high["tickets"] == 4
    assert high["resolution_hours_p50"] == pytest.approx(5.0)
    assert high["resolution_hours_p90"] == pytest.approx(10.6)
    assert high["reopen_rate"] == 0.25
    assert high["reassignments_mean"] == 0.25
    assert high["source_sla_adherence"] == 0.5
    assert high["csat"] == 0.5
    assert "sla_adherence" in high


def test_kpi_command_rejects_bad_filter(capsys):
    code = main(["kpi", "--filter", "team=a"])

    assert code == 2
    assert "--filter 'team=a' is invalid" in capsys.readouterr().err


@pytest.mark.parametrize(
    ("item", "message"),
    [
        ("priority=urgent", "priority 'urgent' is invalid; use one of critical, high, medium, low"),
        ("channel=fax", "channel 'fax' is invalid; use one of email, web, phone, chat, api, social, other"),
        ("month=2016-13", "month '2016-13' is invalid; use a UTC month such as 2024-03"),
        ("day=2016-02-30", "day '2016-02-30' is invalid; use a date such as 2024-03-04"),
        # 2016-03-02 is a Wednesday.
        ("week=2016-03-02", "week '2016-03-02' is not a Monday"),
    ],
)
def test_kpi_command_rejects_bad_filter_value(capsys, item, message):
    code = main(["kpi", "--filter", item])

    assert code == 2
    assert message in capsys.readouterr().err


@pytest.mark.parametrize(
    ("filters", "message"),
    [
        ({"priority": "urgent"}, "priority 'urgent' is invalid"),
        ({"month": "2016-3"}, "month '2016-3' is invalid"),
        ({"week": "2024-03-05"}, "week '2024-03-05' is not a Monday"),
    ],
)
def test_kpis_reject_filter_value(scenario, filters, message):
    db, _ = scenario

    with pytest.raises(KpiQueryError, match=message):
        kpis(db, filters=filters)
    with pytest.raises(KpiQueryError, match=message):
        backlog(db, filters=filters)


def test_kpis_accept_monday_week_filter(scenario):
    db, _ = scenario

    # T0 is Monday 2024-03-04; T1 to T4 open that week.
    assert kpis(db, filters={"week": "2024-03-04"})[0]["tickets"] == 4


def test_nps_null_with_ticket_filter(scenario):
    db, ids = scenario

    filtered = kpis(db, filters={"priority": "high"})[0]
    by_client = kpis(db, filters={"client": ids["acme"]})[0]

    assert filtered["nps"] is None
    assert filtered["nps_responses"] is None
    assert by_client["nps"] == 25.0
    assert by_client["nps_responses"] == 4


@pytest.fixture
def backlog_db(app):
    runner = ProjectionRunner(app, [TicketFactsView()])
    runner.catch_up()
    yield runner.db
    runner.close()


def add_backlog_changes(db, *changes):
    """Write ``(occurred_at, kind, change)`` rows straight into the view, as the view stores them."""
    with db.transaction() as cursor:
        for position, (occurred_at, kind, change) in enumerate(changes, start=1):
            cursor.execute(
                "INSERT INTO ticket_backlog_changes (position, ticket_id, occurred_at, kind, change) "
                "VALUES (?, ?, ?, ?, ?)",
                (position, str(uuid4()), occurred_at, kind, change),
            )


@pytest.mark.parametrize(
    ("period", "expected_periods", "expected_backlog"),
    [
        ("month", ["9999-11", "9999-12"], [1, 2]),
        # 9999-11-30 is a Tuesday and 9999-12-06 a Monday.
        ("week", ["9999-11-29", "9999-12-06"], [1, 2]),
        ("day", ["9999-11-30", "9999-12-01", "9999-12-02", "9999-12-03", "9999-12-04", "9999-12-05", "9999-12-06"],
         [1, 1, 1, 1, 1, 1, 2]),
    ],
)
def test_backlog_ends_in_year_9999(backlog_db, period, expected_periods, expected_backlog):
    add_backlog_changes(
        backlog_db,
        ("9999-11-30T10:00:00.000000+00:00", "opened", 1),
        ("9999-12-06T10:00:00.000000+00:00", "opened", 1),
    )

    rows = backlog(backlog_db, period)

    assert [row["period"] for row in rows] == expected_periods
    assert [row["backlog"] for row in rows] == expected_backlog


def test_backlog_ends_on_last_day_of_9999(backlog_db):
    add_backlog_changes(backlog_db, ("9999-12-31T23:00:00.000000+00:00", "opened", 1))

    rows = backlog(backlog_db, "day")

    assert rows == [{"period": "9999-12-31", "opened": 1, "resolved": 0, "backlog": 1}]


def test_backlog_rejects_too_many_periods(backlog_db):
    add_backlog_changes(
        backlog_db,
        ("2024-03-04T09:00:00.000000+00:00", "opened", 1),
        ("9999-12-06T10:00:00.000000+00:00", "opened", 1),
    )

    # From 2024-03 to 9999-12: 12 * (9999 - 2024) + 12 - 3 + 1 months.
    with pytest.raises(KpiQueryError, match="backlog would list 95710 periods of a month from 2024-03 to 9999-12"):
        backlog(backlog_db, "month")


def test_backlog_since_and_until_narrow_the_walk(backlog_db):
    add_backlog_changes(
        backlog_db,
        ("2024-03-04T09:00:00.000000+00:00", "opened", 1),
        ("2024-04-02T09:00:00.000000+00:00", "resolved", -1),
        ("9999-12-06T10:00:00.000000+00:00", "opened", 1),
    )

    rows = backlog(backlog_db, "month", until=datetime(2024, 5, 1, tzinfo=timezone.utc))

    assert rows == [
        {"period": "2024-03", "opened": 1, "resolved": 0, "backlog": 1},
        {"period": "2024-04", "opened": 0, "resolved": 1, "backlog": 0},
    ]
