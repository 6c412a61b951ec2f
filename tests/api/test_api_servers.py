"""The API behind real HTTP servers on loopback: ``hub serve`` and gunicorn with several workers."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
import requests

from hub.application import create_application
from hub.settings import load_settings
from hub.web.storage import SqlTables, TokenStore
from hubtest import POSTGRES_URL, requires_postgres

pytestmark = pytest.mark.slow

BIN = Path(sys.executable).parent


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def make_token(database_url: str, role: str, **persistence: str) -> str:
    application = create_application(load_settings({"HUB_DATABASE_URL": database_url}), **persistence)
    try:
        tables = SqlTables(application)
        tables.create_tables()
        return TokenStore(tables).create(role, f"{role}-server-test")[1]
    finally:
        application.close()


def wait_until_up(base_url: str, process: subprocess.Popen) -> None:
    for _ in range(300):
        if process.poll() is not None:
            raise AssertionError(f"the server exited with {process.returncode}")
        try:
            if requests.get(f"{base_url}/healthz", timeout=5).status_code == 200:
                return
        except (requests.ConnectionError, requests.Timeout):
            pass
        time.sleep(0.1)
    raise AssertionError("the server did not answer /healthz within 30 s")


def start(command: list[str], database_url: str, tmp_path: Path, **extra_env: str) -> subprocess.Popen:
    env = {**os.environ, "HUB_DATABASE_URL": database_url, **extra_env}
    log = open(tmp_path / "server.log", "w")  # noqa: SIM115 - closed with the process
    return subprocess.Popen(command, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)


def stop(process: subprocess.Popen) -> None:
    os.killpg(process.pid, signal.SIGTERM)
    try:
        process.wait(timeout=20)
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, signal.SIGKILL)
        process.wait()


@pytest.fixture
def served(tmp_path):
    """``hub serve`` on a free loopback port: yields the base URL and an agent token."""
    database_url = f"sqlite:///{tmp_path}/hub.sqlite3"
    token = make_token(database_url, "admin")
    port = free_port()
    process = start([str(BIN / "hub"), "serve", "--port", str(port)], database_url, tmp_path)
    base_url = f"http://127.0.0.1:{port}"
    try:
        wait_until_up(base_url, process)
        yield base_url, {"Authorization": f"Bearer {token}"}
    finally:
        stop(process)


def test_serve_runs_projections_in_process(served):
    base_url, headers = served
    created = requests.post(f"{base_url}/api/v1/tickets", json={"subject": "Over HTTP"}, headers=headers, timeout=10)

    listed = []
    for _ in range(100):
        listed = requests.get(f"{base_url}/api/v1/tickets", headers=headers, timeout=10).json()["items"]
        if listed:
            break
        time.sleep(0.1)

    assert created.status_code == 201
    assert [item["id"] for item in listed] == [created.json()["id"]]
    health = requests.get(f"{base_url}/healthz", timeout=10).json()
    assert health["projections"]["mode"] == "in-process"
    assert health["projections"]["running"] is True


def test_serve_reads_ticket_at_each_version(served):
    base_url, headers = served
    created = requests.post(f"{base_url}/api/v1/tickets", json={"subject": "Versions"}, headers=headers, timeout=10).json()
    bodies = [created]
    for path, body in (("classify", {"category": "access"}), ("prioritize", {"priority": "low"}), ("close", {})):
        bodies.append(
            requests.post(f"{base_url}/api/v1/tickets/{created['id']}/{path}", json=body, headers=headers, timeout=10).json()
        )

    for version, expected in enumerate(bodies, start=1):
        past = requests.get(f"{base_url}/api/v1/tickets/{created['id']}?version={version}", headers=headers, timeout=10)
        assert past.json() == expected


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=[requires_postgres, pytest.mark.postgres])])
def gunicorn_store(request, tmp_path):
    """A new, empty store for gunicorn: its URL and extra environment (the PostgreSQL schema)."""
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path}/hub.sqlite3", {}
    return POSTGRES_URL, {"POSTGRES_SCHEMA": request.getfixturevalue("postgres_schema")}


def test_gunicorn_workers_share_idempotency_keys(tmp_path, gunicorn_store):
    database_url, extra_env = gunicorn_store
    port = free_port()
    # Four workers start together on an empty store, as the Procfile does.
    process = start(
        [str(BIN / "gunicorn"), "hub.web:create_app()", "--workers", "4", "--bind", f"127.0.0.1:{port}"],
        database_url, tmp_path, **extra_env,
    )
    base_url = f"http://127.0.0.1:{port}"
    try:
        wait_until_up(base_url, process)
        token = make_token(database_url, "integration", **extra_env)
        headers = {"Authorization": f"Bearer {token}", "Idempotency-Key": "one-ticket-only"}
        with ThreadPoolExecutor(max_workers=8) as pool:
            responses = list(pool.map(
                lambda _: requests.post(f"{base_url}/api/v1/tickets", json={"subject": "Race"}, headers=headers, timeout=30),
                range(16),
            ))
        stream = requests.get(f"{base_url}/api/v1/events", headers={"Authorization": f"Bearer {token}"}, timeout=10).json()
    finally:
        stop(process)

    assert {response.status_code for response in responses} == {201}
    assert len({response.content for response in responses}) == 1
    assert [item["type"] for item in stream["items"]] == ["ticket.opened"]
