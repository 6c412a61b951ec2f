"""``hub keys``, ``hub connections`` and ``hub sync`` through the command line's entry point."""

from __future__ import annotations

import base64
import io
import json
import os
import subprocess
import sys
import uuid
from dataclasses import dataclass

import pytest
from zendesk_server import RecordedZendesk, recorded_pages, serve

from hub.cli import main

CREDENTIALS = {"email": "agent@example.com", "api_token": "zd-secret-token-1"}


@dataclass
class Completed:
    returncode: int
    stdout: str
    stderr: str


@pytest.fixture
def env(tmp_path, monkeypatch) -> dict[str, str]:
    values = {"HUB_DATABASE_URL": f"sqlite:///{tmp_path}/hub.sqlite3", "HUB_CONNECTORS_ALLOW_PRIVATE": "1"}
    monkeypatch.delenv("HUB_CIPHER_KEY", raising=False)
    for name, value in values.items():
        monkeypatch.setenv(name, value)
    return values


@pytest.fixture
def hub(capsys, monkeypatch):
    """Run `hub ARGS` in this process (the environment comes from the env fixture)."""

    def run(*args: str, env: dict[str, str], stdin: str | None = None) -> Completed:
        capsys.readouterr()
        monkeypatch.setattr(sys, "stdin", io.StringIO(stdin or ""))
        code = main(["--log-level", "WARNING", *args])
        captured = capsys.readouterr()
        return Completed(code, captured.out, captured.err)

    return run


def test_keys_generate_prints_32_byte_key(env):
    environ = {key: value for key, value in os.environ.items() if key != "HUB_CIPHER_KEY"}
    result = subprocess.run(
        [sys.executable, "-m", "hub.cli", "keys", "generate"], capture_output=True, text=True, env=environ, timeout=120,
    )

    assert result.returncode == 0
    assert len(base64.b64decode(result.stdout.strip())) == 32


def test_add_reads_credentials_from_stdin_and_lists(hub, env):
    added = hub("connections", "add", "--kind", "zendesk", "--base-url", "https://example.zendesk.com",
                "--credentials", "-", "--every-minutes", "15", "--option", "include=[]",
                env=env, stdin=json.dumps(CREDENTIALS))
    listed = hub("connections", "list", "--format", "json", env=env)

    connection_id = added.stdout.strip()
    assert added.returncode == 0, added.stderr
    assert str(uuid.UUID(connection_id)) == connection_id
    (row,) = json.loads(listed.stdout)
    assert (row["id"], row["kind"], row["schedule"], row["options"]) == (
        connection_id, "zendesk", {"every_minutes": 15}, {"include": []},
    )
    assert "zd-secret-token-1" not in listed.stdout + added.stderr + listed.stderr


def test_list_table_shows_schedule(hub, env, tmp_path):
    credentials = tmp_path / "freshdesk.json"
    credentials.write_text(json.dumps({"api_key": "fd-secret-key-1"}))
    hub("connections", "add", "--kind", "freshdesk", "--base-url", "https://example.freshdesk.com",
        "--credentials", str(credentials), "--cron", "*/10 * * * *", env=env)

    listed = hub("connections", "list", env=env)

    header, row = listed.stdout.splitlines()
    assert header.split() == ["id", "kind", "name", "base_url", "schedule", "last_sync", "last_sync_at", "sync_count"]
    assert "cron */10 * * * *" in row
    assert row.split()[1:4] == ["freshdesk", "freshdesk", "https://example.freshdesk.com"]


def test_non_json_credentials_exit_2(hub, env):
    result = hub("connections", "add", "--kind", "zendesk", "--base-url", "https://example.zendesk.com",
                 "--credentials", "-", env=env, stdin="api_token=zd-secret-token-1")

    assert result.returncode == 2
    assert "are not a JSON object" in result.stderr
    assert "zd-secret-token-1" not in result.stderr


def test_invalid_base_url_exits_2(hub, env):
    result = hub("connections", "add", "--kind", "zendesk", "--base-url", "ftp://example.zendesk.com",
                 "--credentials", "-", env=env, stdin=json.dumps(CREDENTIALS))

    assert result.returncode == 2
    assert "base_url 'ftp://example.zendesk.com' is not an absolute http(s) URL" in result.stderr


def test_sync_unknown_connection_exits_2(hub, env):
    missing = "0f8fad5b-d9cb-469f-a165-70867728950e"

    result = hub("sync", missing, env=env)

    assert result.returncode == 2
    assert f"connection {missing} not found" in result.stderr


def test_sync_against_loopback_server(hub, env):
    pages = recorded_pages(3)
    state = RecordedZendesk(pages, CREDENTIALS["email"], CREDENTIALS["api_token"])
    with serve(state) as base_url:
        added = hub("connections", "add", "--kind", "zendesk", "--base-url", base_url, "--credentials", "-",
                    "--option", "include=[]", env=env, stdin=json.dumps(CREDENTIALS))
        connection_id = added.stdout.strip()

        synced = hub("sync", connection_id, "--format", "json", env=env)

    assert synced.returncode == 0, synced.stderr
    result = json.loads(synced.stdout)
    assert result["status"] == "completed"
    assert result["counts"]["tickets_created"] == 3


def test_failed_sync_exits_1_with_error(hub, env):
    pages = recorded_pages(1)
    state = RecordedZendesk(pages, CREDENTIALS["email"], "another-token")
    with serve(state) as base_url:
        added = hub("connections", "add", "--kind", "zendesk", "--base-url", base_url, "--credentials", "-",
                    "--option", "include=[]", env=env, stdin=json.dumps(CREDENTIALS))

        synced = hub("sync", added.stdout.strip(), env=env)

    assert synced.returncode == 1
    assert "rejected the credentials" in synced.stderr
    assert "zd-secret-token-1" not in synced.stderr + synced.stdout


def test_sync_to_loopback_names_connectors_setting(hub, env, monkeypatch):
    pages = recorded_pages(1)
    state = RecordedZendesk(pages, CREDENTIALS["email"], CREDENTIALS["api_token"])
    with serve(state) as base_url:
        added = hub("connections", "add", "--kind", "zendesk", "--base-url", base_url, "--credentials", "-",
                    "--option", "include=[]", env=env, stdin=json.dumps(CREDENTIALS))
        # The connection was added while private addresses were allowed; the sync runs without.
        monkeypatch.setenv("HUB_CONNECTORS_ALLOW_PRIVATE", "0")

        synced = hub("sync", added.stdout.strip(), env=env)

    assert synced.returncode == 1
    assert "Connector connection reached 127.0.0.1, which is a loopback address." in synced.stderr
    assert "Set HUB_CONNECTORS_ALLOW_PRIVATE=1 to allow tool servers on a private network" in synced.stderr
    assert "HUB_WEBHOOKS_ALLOW_PRIVATE" not in synced.stderr
