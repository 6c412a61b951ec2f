"""``hub run``, the main job, on the bundled ServiceNow log in a fresh folder."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest


def hub(*args: str, cwd) -> subprocess.CompletedProcess:
    env = {key: value for key, value in os.environ.items() if not key.startswith("HUB_")}
    return subprocess.run(
        [sys.executable, "-m", "hub.cli", "--log-level", "ERROR", *args],
        capture_output=True, text=True, env=env, cwd=cwd, timeout=600,
    )


@pytest.mark.slow
def test_run_imports_bundled_log_once_and_prints_token(tmp_path):
    first = hub("run", "--no-serve", cwd=tmp_path)
    second = hub("run", "--no-serve", cwd=tmp_path)
    kpis = hub("kpi", "--by", "priority", "--format", "json", "--no-catch-up", cwd=tmp_path)

    assert first.returncode == 0, first.stderr
    assert "Event store: sqlite:///var/hub.sqlite3" in first.stdout
    assert "245,345 new events, 0 duplicates" in first.stdout
    assert "Incidents: 24,918" in first.stdout
    assert first.stdout.strip().splitlines()[-1].startswith("Next: ")
    sign_in = (
        "Sign in with this admin token; it is shown only now and replaces the one of the last run "
        "('hub tokens create' makes lasting ones):"
    )
    first_token = first.stdout.splitlines()[first.stdout.splitlines().index(sign_in) + 1]
    assert first_token.startswith("hub_")
    assert (tmp_path / "var" / "hub.sqlite3").exists()

    assert second.returncode == 0, second.stderr
    assert "0 new events, 245,345 duplicates" in second.stdout
    second_token = second.stdout.splitlines()[second.stdout.splitlines().index(sign_in) + 1]
    tokens = json.loads(hub("tokens", "list", "--format", "json", cwd=tmp_path).stdout)
    sign_in_tokens = [token for token in tokens if token["name"] == "hub-run"]
    assert len(sign_in_tokens) == 2
    assert [token["revoked_at"] is None for token in sign_in_tokens] == [False, True]
    assert second_token != first_token

    rows = {row["priority"]: row for row in json.loads(kpis.stdout)}
    assert {priority: row["tickets"] for priority, row in rows.items()} == {
        "critical": 270, "high": 408, "medium": 23466, "low": 774,
    }


def test_run_leaves_other_data_alone(tmp_path):
    from hub.application import create_application
    from hub.domain import Context
    from hub.settings import load_settings

    (tmp_path / "var").mkdir()
    app = create_application(load_settings({"HUB_DATABASE_URL": f"sqlite:///{tmp_path}/var/hub.sqlite3"}))
    app.open_ticket(Context(), subject="Our own ticket", channel="web")
    app.close()

    result = hub("run", "--no-serve", cwd=tmp_path)

    assert result.returncode == 0, result.stderr
    assert "The store already holds other data; the bundled ServiceNow log is not imported." in result.stdout
