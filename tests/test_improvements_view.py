"""The PDCA log: baseline at plan time, the change, the KPI measured over the check window, the decision."""

from __future__ import annotations

import json
from datetime import datetime, timedelta, timezone
from uuid import uuid4

import pytest

from hub.domain import Context, Improvement, Ticket
from projections.improvements import ImprovementView
from projections.queries import improvements
from projections.runner import ProjectionRunner
from projections.tickets import TicketFactsView

T0 = datetime(2024, 6, 3, 9, 0, tzinfo=timezone.utc)
WINDOW_START = T0
WINDOW_END = T0 + timedelta(days=7)


def at(hours):
    return Context(actor_kind="agent", actor_id="manager", occurred_at=T0 + timedelta(hours=hours))


def rated_ticket(opened_hours, priority, reply_after_hours, score, scale="1-5"):
    ticket = Ticket.open(at(opened_hours), ticket_id=uuid4(), subject="Question", channel="chat")
    ticket.prioritize(at(opened_hours), priority=priority)
    ticket.reply(at(opened_hours + reply_after_hours), body="Answer")
    ticket.resolve(at(opened_hours + reply_after_hours))
    ticket.rate_satisfaction(at(opened_hours + reply_after_hours), score=score, scale=scale)
    return ticket


@pytest.fixture
def pdca(app):
    tickets = [
        # In the window: three high tickets (satisfied, satisfied, not) and one low ticket.
        rated_ticket(1, "high", 1, 5),
        rated_ticket(2, "high", 2, 4),
        rated_ticket(3, "high", 3, "bad", "good_bad"),
        rated_ticket(4, "low", 5, 1),
        # Before the window.
        rated_ticket(-48, "high", 1, 1),
    ]
    csat = Improvement.plan(
        at(-72), improvement_id=uuid4(), title="Coach on tone", kpi="csat",
        baseline=0.5, target=0.8, filters={"priority": "high"},
    )
    csat.do(at(-1), change="Tone coaching for the chat team")
    csat.check_result(at(200), measured=0.7, window_start=WINDOW_START, window_end=WINDOW_END)
    csat.act(at(201), decision="standardized", note="Keep the coaching")

    response = Improvement.plan(
        at(-71), improvement_id=uuid4(), title="Reply macros", kpi="first_response_hours_p50",
        baseline=4.0, target=2.0,
    )
    response.do(at(-1), change="Macros for common questions")
    response.check_result(at(200), measured=2.4, window_start=WINDOW_START, window_end=WINDOW_END)

    mood = Improvement.plan(
        at(-70), improvement_id=uuid4(), title="Cheer", kpi="mood", baseline=1.0, target=2.0,
    )
    mood.do(at(-1), change="Music")
    mood.check_result(at(200), measured=1.5, window_start=WINDOW_START, window_end=WINDOW_END)

    planned = Improvement.plan(
        at(-69), improvement_id=uuid4(), title="Fewer reopens", kpi="reopen_rate", baseline=0.2, target=0.1,
    )

    app.save_batch([*tickets, csat, response, mood, planned])
    runner = ProjectionRunner(app, [TicketFactsView(), ImprovementView()])
    runner.catch_up()
    yield runner.db
    runner.close()


def entries_by_title(db, **filters):
    return {entry["title"]: entry for entry in improvements(db, **filters)}


def test_log_lists_cycles_in_plan_order(pdca):
    titles = [entry["title"] for entry in improvements(pdca)]

    assert titles == ["Coach on tone", "Reply macros", "Cheer", "Fewer reopens"]


def test_acted_cycle_has_plan_change_check_decision(pdca):
    entry = entries_by_title(pdca)["Coach on tone"]

    assert entry["phase"] == "act"
    assert (entry["kpi"], entry["baseline"], entry["target"]) == ("csat", 0.5, 0.8)
    assert entry["filters"] == {"priority": "high"}
    assert entry["change"] == "Tone coaching for the chat team"
    assert entry["measured"] == 0.7
    assert entry["window_start"] == "2024-06-03T09:00:00.000000+00:00"
    assert (entry["decision"], entry["decision_note"]) == ("standardized", "Keep the coaching")


def test_measured_from_views_uses_window_and_filters(pdca):
    entry = entries_by_title(pdca)["Coach on tone"]

    # High tickets opened in the window: 2 of 3 ratings satisfied.
    assert entry["measured_from_views"] == pytest.approx(2 / 3)
    assert entry["change_from_baseline"] == pytest.approx(2 / 3 - 0.5)
    assert entry["target_met"] is False


def test_lower_is_better_when_target_below_baseline(pdca):
    entry = entries_by_title(pdca)["Reply macros"]

    # First responses after 1, 2, 3 and 5 hours in the window: median 2.5.
    assert entry["measured_from_views"] == pytest.approx(2.5)
    assert entry["change_from_baseline"] == pytest.approx(-1.5)
    assert entry["target_met"] is False


def test_unknown_kpi_keeps_recorded_measure(pdca):
    entry = entries_by_title(pdca)["Cheer"]

    assert entry["measured_from_views"] is None
    assert entry["measure_error"] == "kpi 'mood' is not a KPI the views compute"
    assert entry["change_from_baseline"] == pytest.approx(0.5)
    assert entry["target_met"] is False


def test_planned_cycle_has_no_result(pdca):
    entry = entries_by_title(pdca)["Fewer reopens"]

    assert entry["phase"] == "plan"
    assert entry["change"] is None
    assert entry["measured_from_views"] is None
    assert entry["change_from_baseline"] is None
    assert entry["target_met"] is None


def test_filters_by_phase_and_kpi(pdca):
    assert list(entries_by_title(pdca, phase="check")) == ["Reply macros", "Cheer"]
    assert list(entries_by_title(pdca, kpi="csat")) == ["Coach on tone"]
    with pytest.raises(ValueError, match="phase 'done' is invalid"):
        improvements(pdca, phase="done")


def test_improvements_command_lists_log(tmp_path, monkeypatch, capsys):
    from hub.application import create_application
    from hub.cli import main
    from hub.settings import load_settings

    url = f"sqlite:///{tmp_path}/hub.sqlite3"
    app = create_application(load_settings({"HUB_DATABASE_URL": url}))
    cycle = Improvement.plan(at(0), improvement_id=uuid4(), title="Macros", kpi="csat", baseline=0.6, target=0.7)
    cycle.do(at(1), change="New macros")
    app.save_batch([cycle])
    app.close()
    monkeypatch.setenv("HUB_DATABASE_URL", url)

    code = main(["improvements", "--format", "json"])

    assert code == 0
    [entry] = json.loads(capsys.readouterr().out)
    assert (entry["title"], entry["phase"], entry["change"]) == ("Macros", "do", "New macros")
    assert (entry["baseline"], entry["target"], entry["target_met"]) == (0.6, 0.7, None)
