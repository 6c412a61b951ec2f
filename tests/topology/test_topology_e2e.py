"""End to end: two web processes, two workers and a clock on one PostgreSQL schema, with a worker killed mid-delivery.

The processes are the Procfile's commands, started as subprocesses with the
settings in their environment only. Tickets are created and prioritized over
HTTP through both web processes at once. A loopback receiver, subscribed to
``ticket.*``, keeps one delivery open, and the worker that sent it is killed
with SIGKILL while the intake goes on. The test then checks that every view
shows every ticket exactly once and that every message arrived, signed, with
no message sent twice at the same time and none sent again after a recorded
success.
"""

from __future__ import annotations

import json
import os
import secrets
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any
from uuid import UUID

import pytest
import requests

from hubtest import POSTGRES_URL, requires_postgres
from webhooks.worker import DeliveryPolicy

from .processes import (
    Processes,
    WebhookReceiver,
    expand,
    free_port,
    fresh_schema,
    pid_owning_connection,
    procfile_commands,
    query,
    wait_until,
    web_command,
)

pytestmark = [requires_postgres, pytest.mark.postgres, pytest.mark.slow]

TICKETS = 60
CLIENT_THREADS = 8
WEB_WORKERS = 2
# Each ticket records ticket.opened and ticket.prioritized, one message each.
MESSAGES = 2 * TICKETS
# The receiver keeps this delivery open, and the worker that sent it is killed.
HELD_REQUEST = 20
# Short, so that the surviving worker takes over the killed worker's batch soon;
# the receiver responds at once, so no live attempt comes near it.
LEASE_SECONDS = 12
TIMEOUT = 60


def topology_environment(schema: str, cipher_key: str) -> dict[str, str]:
    """Return the environment every process gets: the settings live only here (12-factor)."""
    env = {name: value for name, value in os.environ.items() if not name.startswith(("HUB_", "POSTGRES_"))}
    env.update({
        "HUB_DATABASE_URL": POSTGRES_URL,
        "HUB_POSTGRES_SCHEMA": schema,
        # hub db init creates every table; the processes must start without DDL.
        "HUB_CREATE_TABLE": "n",
        "HUB_CIPHER_KEY": cipher_key,
        "HUB_SECRET_KEY": secrets.token_urlsafe(32),
        "HUB_WEBHOOKS_ALLOW_PRIVATE": "1",
        "HUB_WEBHOOKS_LEASE_SECONDS": str(LEASE_SECONDS),
        "HUB_WEBHOOKS_RETRY_SCHEDULE": "1,2,4",
        "PYTHONUNBUFFERED": "1",
    })
    return env


def generate_cipher_key(tmp_path: Path) -> str:
    with Processes(tmp_path, os.environ) as keys:
        result = keys.hub("keys", "generate")
    assert result.returncode == 0, result.stderr
    return result.stdout.strip()


def all_ticket_ids(base_url: str, headers: dict[str, str]) -> list[str]:
    """Page through GET /api/v1/tickets and return every id listed, in list order."""
    ids: list[str] = []
    cursor = None
    while True:
        params: dict[str, Any] = {"limit": 25}
        if cursor:
            params["cursor"] = cursor
        page = requests.get(f"{base_url}/api/v1/tickets", params=params, headers=headers, timeout=10).json()
        ids.extend(item["id"] for item in page["items"])
        cursor = page["next_cursor"]
        if not cursor:
            return ids


def all_sla_rows(base_url: str, headers: dict[str, str]) -> list[dict[str, Any]]:
    rows: list[dict[str, Any]] = []
    cursor = None
    while True:
        params: dict[str, Any] = {"limit": 100}
        if cursor:
            params["cursor"] = cursor
        page = requests.get(f"{base_url}/api/v1/sla", params=params, headers=headers, timeout=10).json()
        rows.extend(page["items"])
        cursor = page["next_cursor"]
        if not cursor:
            return rows


def healthy(base_url: str) -> dict[str, Any] | None:
    try:
        response = requests.get(f"{base_url}/healthz", timeout=5)
    except requests.RequestException:
        return None
    return response.json() if response.status_code == 200 else None


def intake(base_urls: list[str], headers: dict[str, str], number: int) -> str:
    """Open a ticket through one web process and prioritize it through the other; return its id."""
    opened = requests.post(
        f"{base_urls[number % 2]}/api/v1/tickets",
        json={"subject": f"Topology ticket {number}", "channel": "web"}, headers=headers, timeout=30,
    )
    assert opened.status_code == 201, opened.text
    ticket_id = opened.json()["id"]
    prioritized = requests.post(
        f"{base_urls[(number + 1) % 2]}/api/v1/tickets/{ticket_id}/prioritize",
        json={"priority": "high"}, headers=headers, timeout=30,
    )
    assert prioritized.status_code == 200, prioritized.text
    return ticket_id


def test_processes_share_one_database(tmp_path):
    cipher_key = generate_cipher_key(tmp_path)
    with fresh_schema() as schema, Processes(tmp_path, topology_environment(schema, cipher_key)) as processes, \
            WebhookReceiver() as receiver:
        # Release phase: check the settings, create every table, issue a token.
        checked = processes.hub("config", "check")
        assert checked.returncode == 0, checked.stderr
        initialized = processes.hub("db", "init")
        assert initialized.returncode == 0, initialized.stderr
        created_token = processes.hub("tokens", "create", "--role", "admin", "--name", "topology-test")
        assert created_token.returncode == 0, created_token.stderr
        headers = {"Authorization": f"Bearer {created_token.stdout.strip().splitlines()[-1]}"}

        # Two web processes, two workers and one clock, as the Procfile runs them.
        procfile = procfile_commands()
        ports = [free_port(), free_port()]
        for number, port in enumerate(ports, start=1):
            processes.start(f"web{number}", web_command(port, WEB_WORKERS, tmp_path / f"web{number}.ctl"))
        for number in (1, 2):
            processes.start(f"worker{number}", expand(procfile["worker"], processes.env))
        processes.start("clock", expand(procfile["clock"], processes.env))
        base_urls = [f"http://127.0.0.1:{port}" for port in ports]
        for base_url in base_urls:
            wait_until(lambda url=base_url: healthy(url), TIMEOUT, processes.describe)

        # Subscribe the receiver and define an SLA policy before any ticket exists.
        subscribed = requests.post(
            f"{base_urls[0]}/api/v1/webhooks", json={"url": receiver.url, "event_types": ["ticket.*"]},
            headers=headers, timeout=30,
        )
        assert subscribed.status_code == 201, subscribed.text
        receiver.secret = subscribed.json()["secret"]
        endpoint_id = subscribed.json()["id"]
        policy = requests.post(
            f"{base_urls[1]}/api/v1/sla-policies",
            json={"name": "Topology", "targets": {"high": {"first_response": 60, "resolution": 480}}},
            headers=headers, timeout=30,
        )
        assert policy.status_code == 201, policy.text
        receiver.hold(HELD_REQUEST)

        # Intake through both web processes at once. Once a worker is in the middle of the held
        # delivery, it is killed, and the second half of the intake follows while it is gone.
        with ThreadPoolExecutor(CLIENT_THREADS) as pool:
            first_half = [pool.submit(intake, base_urls, headers, number) for number in range(TICKETS // 2)]
            held_request = receiver.wait_held(TIMEOUT)
            assert held_request is not None, processes.describe()
            workers = {processes.running[name].pid: name for name in ("worker1", "worker2")}
            sender = pid_owning_connection(held_request.client_port, receiver.port, list(workers))
            assert sender is not None, f"no worker holds the connection from port {held_request.client_port}"
            killed = workers[sender]
            processes.kill(killed)
            receiver.release()
            second_half = [pool.submit(intake, base_urls, headers, number) for number in range(TICKETS // 2, TICKETS)]
            ticket_ids = [future.result() for future in first_half + second_half]
        survivor = "worker2" if killed == "worker1" else "worker1"

        # Every message is delivered, the held one by the surviving worker after the lease ran out,
        # and the hub has finished with every message (the killed worker's batch is sent again).
        def every_message_delivered() -> bool:
            delivered = {arrival.message_id for arrival in receiver.arrivals() if arrival.status == 204}
            unfinished = query(
                schema, "SELECT COUNT(*) FROM webhook_messages WHERE state IN ('pending', 'delivering')"
            )[0][0]
            return len(delivered) >= MESSAGES and unfinished == 0

        wait_until(every_message_delivered, LEASE_SECONDS + TIMEOUT, processes.describe)
        head = query(schema, "SELECT MAX(notification_id) FROM hub_events")[0][0]

        def views_caught_up() -> bool:
            positions = query(schema, "SELECT position FROM projection_positions")
            return all(position == head for (position,) in positions)

        wait_until(views_caught_up, TIMEOUT, processes.describe)

        # The intake: every ticket was created once.
        assert len(set(ticket_ids)) == TICKETS
        # The endpoint's creation, the SLA policy, then ticket.opened and ticket.prioritized per ticket.
        assert head == 1 + 1 + 2 * TICKETS

        # The views: each ticket exactly once.
        expected_ids = {UUID(ticket_id) for ticket_id in ticket_ids}
        facts = [UUID(row[0]) for row in query(schema, "SELECT ticket_id FROM ticket_facts")]
        assert len(facts) == TICKETS
        assert set(facts) == expected_ids
        sla_tickets = query(schema, "SELECT ticket_id, policy_id FROM sla_tickets")
        assert len(sla_tickets) == TICKETS
        assert {UUID(ticket_id) for ticket_id, _ in sla_tickets} == expected_ids
        assert {UUID(policy_id) for _, policy_id in sla_tickets} == {UUID(policy.json()["id"])}
        for base_url in base_urls:
            listed = all_ticket_ids(base_url, headers)
            assert Counter(listed).most_common(1)[0][1] == 1
            assert {UUID(ticket_id) for ticket_id in listed} == expected_ids
            kpis = requests.get(f"{base_url}/api/v1/kpis", headers=headers, timeout=10).json()["items"]
            assert kpis[0]["tickets"] == TICKETS
            sla_rows = all_sla_rows(base_url, headers)
            targets_per_ticket = Counter((row["ticket_id"], row["target"]) for row in sla_rows)
            assert set(targets_per_ticket.values()) == {1}
            assert len(targets_per_ticket) == 2 * TICKETS
            health = healthy(base_url)
            assert health is not None
            assert health["projections"]["lag"] == 0

        # The webhooks: every event arrived, signed, under one stable message id.
        arrivals = receiver.arrivals()
        rejected = [(arrival.message_id, arrival.error) for arrival in arrivals if arrival.status not in (204, None)]
        assert rejected == []
        delivered_events = Counter()
        message_of_event: dict[tuple[str, str], set[str]] = {}
        for arrival in arrivals:
            if arrival.error == "truncated body":
                # The killed worker was in the middle of sending this one.
                continue
            payload = json.loads(arrival.body)
            key = (payload["data"]["ticket_id"], payload["type"])
            message_of_event.setdefault(key, set()).add(arrival.message_id)
            if arrival.status == 204:
                delivered_events[key] += 1
        expected_events = {
            (ticket_id, event_type) for ticket_id in ticket_ids for event_type in ("ticket.opened", "ticket.prioritized")
        }
        assert set(delivered_events) == expected_events
        assert all(len(message_ids) == 1 for message_ids in message_of_event.values())

        # The outbox: one message per event, each delivered with exactly one recorded success.
        states = query(schema, "SELECT state, COUNT(*) FROM webhook_messages WHERE endpoint_id = %s GROUP BY state", (endpoint_id,))
        assert states == [("delivered", MESSAGES)]
        successes = query(
            schema,
            "SELECT message_id, COUNT(*) FROM webhook_attempts WHERE outcome = 'success' GROUP BY message_id",
        )
        assert len(successes) == MESSAGES
        assert {count for _, count in successes} == {1}
        abandoned = {row[0] for row in query(schema, "SELECT message_id FROM webhook_attempts WHERE outcome = 'abandoned'")}
        assert held_request.message_id in abandoned

        # No message was sent twice at the same time.
        by_message: dict[str, list[Any]] = {}
        for arrival in arrivals:
            by_message.setdefault(arrival.message_id, []).append(arrival)
        for message_arrivals in by_message.values():
            ordered = sorted(message_arrivals, key=lambda arrival: arrival.started)
            for earlier, later in zip(ordered, ordered[1:]):
                assert later.started >= earlier.finished, f"message {earlier.message_id} was sent twice at once"

        # A message arrives again after a success only when the killed worker's lease was taken
        # over: that worker recorded nothing about the batch it had claimed.
        repeated = {message_id for message_id, items in by_message.items() if sum(a.status == 204 for a in items) > 1}
        assert repeated <= abandoned
        assert len(abandoned) <= DeliveryPolicy().batch_size

        # The surviving processes are still up and logged no error.
        for name in ("web1", "web2", survivor, "clock"):
            assert processes.running[name].poll() is None, processes.describe()
            assert "Traceback" not in processes.log(name), processes.log(name)
        assert "Scheduler started" in processes.log("clock")
