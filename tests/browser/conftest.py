"""Fixtures for the browser tests: real ServiceNow data, a live server and headless Chromium.

Once per session, a slice of the bundled ServiceNow log is imported into a
SQLite file: every incident whose number hashes to 0 modulo ``SLICE_MODULUS``,
about 1,000 incidents spread over the whole log. The app serves that store on
127.0.0.1 with the projections running in-process, and Playwright drives
Debian's Chromium at /usr/bin/chromium. Playwright's own browser downloads are
never used. The tests skip with a reason when Chromium or Playwright is missing.

Screenshots go to ``test-artifacts/screenshots/`` at the repository root
(``HUB_TEST_ARTIFACTS`` overrides the folder).
"""

from __future__ import annotations

import csv
import gzip
import os
import threading
import zlib
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import pytest
import requests

from tests.browser.helpers import (
    CHROMIUM,
    CHROMIUM_ARGS,
    DESKTOP,
    PHONE,
    BrowserPage,
    new_page,
    quiet_request_handler,
    sign_in,
    watch,
)

# One incident in this many is imported: 25 gives 990 incidents in 5,742 rows of the log.
SLICE_MODULUS = 25

REPOSITORY = Path(__file__).resolve().parents[2]

def pytest_collection_modifyitems(config: Any, items: list[Any]) -> None:
    reason = None
    if not CHROMIUM.exists():
        reason = f"{CHROMIUM} is missing; install Debian's chromium package (.ci/run does)"
    else:
        try:
            import playwright.sync_api  # noqa: F401
        except ImportError:
            reason = "Playwright for Python is missing; pip install playwright (no browser download needed)"
    if reason is None:
        return
    for item in items:
        if {"browser", "live_hub"} & set(getattr(item, "fixturenames", ())):
            item.add_marker(pytest.mark.skip(reason=reason))


@pytest.fixture(scope="session")
def artifact_folder() -> Path:
    folder = Path(os.environ.get("HUB_TEST_ARTIFACTS", REPOSITORY / "test-artifacts")) / "screenshots"
    folder.mkdir(parents=True, exist_ok=True)
    return folder


def write_slice(source: Path, target: Path, modulus: int) -> tuple[int, set[str]]:
    """Copy the header and every row of the incidents selected by ``modulus``; return rows and numbers."""
    numbers: set[str] = set()
    rows = 0
    with gzip.open(source, "rt", newline="", encoding="utf-8") as reader, target.open("w", newline="") as writer:
        lines = csv.reader(reader)
        output = csv.writer(writer)
        header = next(lines)
        output.writerow(header)
        number_index = header.index("number")
        for line in lines:
            number = line[number_index]
            if zlib.crc32(number.encode()) % modulus == 0:
                output.writerow(line)
                numbers.add(number)
                rows += 1
    return rows, numbers


@dataclass
class LiveHub:
    """The app on a real-data store, served on loopback, with tokens for each role."""

    base_url: str
    app: Any
    tokens: dict[str, str]
    incident_numbers: set[str]
    rows_imported: int

    def api(self, method: str, path: str, **kwargs: Any) -> Any:
        """Call the JSON API as admin and return the decoded body; fail on an error status."""
        response = requests.request(
            method, self.base_url + path, headers={"Authorization": f"Bearer {self.tokens['admin']}"},
            timeout=30, **kwargs,
        )
        assert response.status_code < 400, f"{method} {path}: {response.status_code} {response.text}"
        return response.json()

    def api_items(self, path: str, **params: Any) -> list[dict[str, Any]]:
        """Read every page of a listing endpoint."""
        items: list[dict[str, Any]] = []
        cursor = None
        while True:
            query = dict(params, limit=params.get("limit", 500))
            if cursor:
                query["cursor"] = cursor
            page = self.api("GET", path, params=query)
            items.extend(page["items"])
            cursor = page.get("next_cursor")
            if not cursor:
                return items

    def services(self) -> Any:
        from hub.web.services import EXTENSION_NAME

        return self.app.extensions[EXTENSION_NAME]

    def wait_for_projections(self) -> None:
        """Block until the in-process runner has applied every recorded event."""
        hub = self.services()
        hub.background_runner.wait(hub.application.max_position(), timeout=60)


@pytest.fixture(scope="session")
def live_hub(tmp_path_factory) -> Iterator[LiveHub]:
    from werkzeug.serving import make_server

    from connectors.servicenow_import import BUNDLED_EXPORT, import_incidents
    from hub.application import create_application
    from hub.settings import load_settings
    from hub.web import create_app

    folder = tmp_path_factory.mktemp("real-data")
    export = folder / "incidents.csv"
    rows, numbers = write_slice(BUNDLED_EXPORT, export, SLICE_MODULUS)
    database_url = f"sqlite:///{folder}/hub.sqlite3"

    application = create_application(load_settings({"HUB_DATABASE_URL": database_url}))
    try:
        import_incidents(application, export)
    finally:
        application.close()

    app = create_app({
        "TESTING": True,
        "DATABASE_URL": database_url,
        "RUN_PROJECTIONS": True,
        "PROJECTION_POLL_INTERVAL": 0.2,
        "DASHBOARD_POLL_SECONDS": 1,
    })
    tokens = {}
    with app.app_context():
        from hub.web.services import services

        for role in ("admin", "analyst", "auditor", "agent", "integration"):
            _, tokens[role] = services().tokens.create(role, f"browser-{role}")
    server = make_server("127.0.0.1", 0, app, threaded=True, request_handler=quiet_request_handler())
    thread = threading.Thread(target=server.serve_forever, name="browser-test-server", daemon=True)
    thread.start()
    hub = LiveHub(f"http://127.0.0.1:{server.server_port}", app, tokens, numbers, rows)
    hub.wait_for_projections()
    yield hub
    server.shutdown()
    thread.join(10)
    hub.services().close()


@pytest.fixture(scope="session")
def browser() -> Iterator[Any]:
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        # launch() starts Chromium with a fresh temporary profile (--user-data-dir) and removes it on close.
        chromium = playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        yield chromium
        chromium.close()


@pytest.fixture
def anonymous(browser, live_hub) -> Iterator[BrowserPage]:
    """A page in a fresh browser context that has not signed in."""
    context, recorded = new_page(browser, live_hub, DESKTOP)
    yield recorded
    context.close()


def signed_in_context(browser: Any, hub: LiveHub, viewport: dict[str, int]) -> Any:
    context, recorded = new_page(browser, hub, viewport)
    sign_in(recorded, hub.tokens["analyst"])
    recorded.page.close()
    return context


@pytest.fixture(scope="session")
def analyst_context(browser, live_hub) -> Iterator[Any]:
    """A desktop-sized browser context signed in once with an analyst token, shared by the tests."""
    context = signed_in_context(browser, live_hub, DESKTOP)
    yield context
    context.close()


@pytest.fixture(scope="session")
def phone_context(browser, live_hub) -> Iterator[Any]:
    """A phone-sized browser context signed in once with an analyst token."""
    context = signed_in_context(browser, live_hub, PHONE)
    yield context
    context.close()


@pytest.fixture
def analyst(analyst_context, live_hub) -> Iterator[BrowserPage]:
    """A new desktop page in the shared analyst session; sign out with ``own_analyst`` instead."""
    recorded = watch(analyst_context.new_page(), live_hub)
    yield recorded
    recorded.page.close()


@pytest.fixture
def phone_analyst(phone_context, live_hub) -> Iterator[BrowserPage]:
    """A new phone-sized page in the shared analyst session."""
    recorded = watch(phone_context.new_page(), live_hub)
    yield recorded
    recorded.page.close()


@pytest.fixture
def own_analyst(browser, live_hub) -> Iterator[BrowserPage]:
    """A desktop page signed in as analyst in a browser context of its own."""
    context, recorded = new_page(browser, live_hub, DESKTOP)
    sign_in(recorded, live_hub.tokens["analyst"])
    yield recorded
    context.close()


# Records the tests add on top of the imported log, through the API as a user would.

def hours_ago(now: datetime, hours: float) -> str:
    return (now - timedelta(hours=hours)).isoformat()


@pytest.fixture(scope="session")
def attention_tickets(live_hub) -> dict[str, str]:
    """Open tickets under a 24x7 SLA policy, two of them escalated; return their ids by role.

    High priority has a 600-minute first-response target, at risk after 75%.
    Tickets opened 20 h and 12 h ago have breached it (due 10 h and 2 h ago).
    The one opened 8 h ago is at risk (due in 2 h), and the one opened 2 h ago is running.
    """
    now = datetime.now(timezone.utc)
    live_hub.api("POST", "/api/v1/sla-policies", json={
        "name": "Browser test 24x7", "calendar": None, "at_risk_ratio": 0.75,
        "targets": {"high": {"first_response": 600, "resolution": 6000}},
        "occurred_at": hours_ago(now, 48),
    })
    tickets = {}
    for role, age in (("breached_long", 20), ("breached_short", 12), ("at_risk", 8), ("running", 2)):
        opened = hours_ago(now, age)
        ticket = live_hub.api("POST", "/api/v1/tickets", json={
            "subject": f"Attention test: {role}", "channel": "email", "occurred_at": opened,
        })
        ticket_id = ticket["id"]
        live_hub.api("POST", f"/api/v1/tickets/{ticket_id}/prioritize", json={"priority": "high", "occurred_at": opened})
        live_hub.api("POST", f"/api/v1/tickets/{ticket_id}/assign", json={
            "group": "Browser test desk", "agent": "agent.one", "occurred_at": opened,
        })
        tickets[role] = ticket_id
    live_hub.api("POST", f"/api/v1/tickets/{tickets['breached_long']}/escalations", json={
        "level": 2, "reason": "Customer waiting since yesterday", "owner": "duty.manager",
        "promised_by": hours_ago(now, 1), "occurred_at": hours_ago(now, 6),
    })
    live_hub.api("POST", f"/api/v1/tickets/{tickets['at_risk']}/escalations", json={
        "level": 1, "reason": "VIP client", "owner": "team.lead",
        "promised_by": hours_ago(now, -5), "occurred_at": hours_ago(now, 1),
    })
    live_hub.wait_for_projections()
    return tickets


@pytest.fixture(scope="session")
def pdca_cycles(live_hub) -> dict[str, str]:
    """Two improvement cycles: one through plan, do, check and act on May 2016, one only planned."""
    finished = live_hub.api("POST", "/api/v1/improvements", json={
        "title": "Route password resets to the self-service portal",
        "kpi": "resolution_hours_p50", "baseline": 30.0, "target": 20.0,
        "filters": {"priority": "medium"}, "occurred_at": "2016-04-05T09:00:00+00:00",
    })
    cycle_id = finished["id"]
    live_hub.api("POST", f"/api/v1/improvements/{cycle_id}/do", json={
        "change": "Portal link in the auto-reply", "occurred_at": "2016-04-20T09:00:00+00:00",
    })
    live_hub.api("POST", f"/api/v1/improvements/{cycle_id}/check", json={
        "measured": 18.5, "window_start": "2016-05-01T00:00:00+00:00",
        "window_end": "2016-06-01T00:00:00+00:00", "occurred_at": "2016-06-02T09:00:00+00:00",
    })
    live_hub.api("POST", f"/api/v1/improvements/{cycle_id}/act", json={
        "decision": "standardized", "note": "Kept for every medium ticket",
        "occurred_at": "2016-06-03T09:00:00+00:00",
    })
    planned = live_hub.api("POST", "/api/v1/improvements", json={
        "title": "Reduce reassignments in Group 70", "kpi": "reopen_rate", "baseline": 0.02,
        "target": 0.01, "filters": {"group": "Group 70"}, "occurred_at": "2016-06-10T09:00:00+00:00",
    })
    live_hub.wait_for_projections()
    return {"finished": cycle_id, "planned": planned["id"]}
