"""Delivery against real HTTP receivers on loopback, with time driven by a fake clock."""

import json
import os
import signal
import subprocess
import sys
import threading
from datetime import timedelta
from email.utils import format_datetime
from pathlib import Path
from uuid import UUID

import pytest
from standardwebhooks import Webhook
from standardwebhooks.webhooks import WebhookVerificationError

from hub.domain import Context
from hub.settings import ConfigurationError
from webhooks.endpoint import WebhookEndpoint
from webhooks.retry import DEFAULT_SCHEDULE_SECONDS, JITTER_FRACTION
from webhooks.worker import DeliveryPolicy, DeliveryWorker, policy_from_env

REPOSITORY = Path(__file__).resolve().parents[2]


def statuses(*codes, headers=None, body="ok"):
    """A receiver script that returns the given statuses in turn, then 200."""

    def respond(number, _body):
        code = codes[number - 1] if number <= len(codes) else 200
        return code, dict(headers or {}), body

    return respond


def only_message(harness, endpoint_id):
    [message] = harness.messages(endpoint_id)
    return message


def test_every_delivery_verifies_with_standardwebhooks(store_harness, receivers):
    receiver = receivers()
    endpoint_id, secret = store_harness.subscribe(receiver.url(), ["ticket.opened", "ticket.escalated"])
    ticket_id = store_harness.open_ticket()
    store_harness.escalate(ticket_id)

    store_harness.deliver()

    verifier = Webhook(secret)
    payloads = [verifier.verify(request["body"], request["headers"]) for request in receiver.requests]
    assert sorted(payload["type"] for payload in payloads) == ["ticket.escalated", "ticket.opened"]
    assert {payload["data"]["ticket_id"] for payload in payloads} == {str(ticket_id)}
    assert [message["state"] for message in store_harness.messages(endpoint_id)] == ["delivered", "delivered"]


def test_retries_keep_id_and_body(harness, receivers):
    receiver = receivers(statuses(500, 500, 200))
    endpoint_id, secret = harness.subscribe(receiver.url(), ["ticket.opened"])
    harness.open_ticket()

    harness.deliver()
    harness.clock.advance(5 * (1 + JITTER_FRACTION))
    harness.deliver()
    harness.clock.advance(10 * (1 + JITTER_FRACTION))
    harness.deliver()

    requests = receiver.requests
    assert len(requests) == 3
    assert len({request["headers"]["webhook-id"] for request in requests}) == 1
    assert len({request["body"] for request in requests}) == 1
    assert len({request["headers"]["webhook-timestamp"] for request in requests}) == 3
    for request in requests:
        Webhook(secret).verify(request["body"], request["headers"])
    message = only_message(harness, endpoint_id)
    assert message["state"] == "delivered"
    assert [attempt["status"] for attempt in message["attempts"]] == [500, 500, 200]


def test_receiver_down_gets_every_event_when_back(harness, receivers):
    first = receivers()
    port = first.port
    first.stop()
    endpoint_id, secret = harness.subscribe(f"http://127.0.0.1:{port}/hooks", ["ticket.opened"])
    ticket_ids = [harness.open_ticket(f"Ticket {number}") for number in range(5)]

    harness.deliver()
    errors = [message["attempts"][0]["error"] for message in harness.messages(endpoint_id)]
    back = receivers(port=port)
    harness.clock.advance(5 * (1 + JITTER_FRACTION))
    harness.deliver()

    assert all("connection failed" in error for error in errors)
    payloads = [Webhook(secret).verify(request["body"], request["headers"]) for request in back.requests]
    assert sorted(payload["data"]["ticket_id"] for payload in payloads) == sorted(map(str, ticket_ids))
    assert {message["state"] for message in harness.messages(endpoint_id)} == {"delivered"}


def test_429_retry_after_delays_the_next_attempt(make_harness, receivers):
    harness = make_harness(policy=DeliveryPolicy())
    receiver = receivers(statuses(429, headers={"Retry-After": "120", "Content-Type": "text/plain"}, body="slow down"))
    endpoint_id, secret = harness.subscribe(receiver.url(), ["ticket.opened"])
    harness.open_ticket()

    harness.deliver()
    message = only_message(harness, endpoint_id)
    first_attempt = message["attempts"][0]
    harness.clock.current = message["next_attempt_at"] - timedelta(seconds=1)
    harness.deliver()
    requests_before_due = len(receiver.requests)
    harness.clock.current = message["next_attempt_at"]
    harness.deliver()

    assert first_attempt["status"] == 429
    assert first_attempt["response_body"] == "slow down"
    assert message["next_attempt_at"] - first_attempt["attempted_at"] >= timedelta(seconds=120)
    assert requests_before_due == 1
    timestamps = [int(request["headers"]["webhook-timestamp"]) for request in receiver.requests]
    assert timestamps[1] - timestamps[0] >= 120
    Webhook(secret).verify(receiver.requests[1]["body"], receiver.requests[1]["headers"])
    assert only_message(harness, endpoint_id)["state"] == "delivered"


def test_retry_after_http_date_is_honoured(make_harness, receivers):
    harness = make_harness(policy=DeliveryPolicy())
    retry_at = harness.clock() + timedelta(seconds=900)
    receiver = receivers(statuses(503, headers={"Retry-After": format_datetime(retry_at, usegmt=True)}))
    endpoint_id, _ = harness.subscribe(receiver.url(), ["ticket.opened"])
    harness.open_ticket()

    harness.deliver()

    message = only_message(harness, endpoint_id)
    assert message["next_attempt_at"] >= retry_at
    assert message["next_attempt_at"] <= retry_at + timedelta(seconds=900 * JITTER_FRACTION)


def test_retry_after_is_capped_at_the_longest_step(make_harness, receivers):
    harness = make_harness(policy=DeliveryPolicy())
    receiver = receivers(statuses(429, headers={"Retry-After": "864000"}))
    endpoint_id, _ = harness.subscribe(receiver.url(), ["ticket.opened"])
    harness.open_ticket()

    harness.deliver()

    message = only_message(harness, endpoint_id)
    wait = message["next_attempt_at"] - message["attempts"][0]["attempted_at"]
    longest = max(DEFAULT_SCHEDULE_SECONDS)
    assert timedelta(seconds=longest) <= wait <= timedelta(seconds=longest * (1 + JITTER_FRACTION))


def test_other_4xx_follows_the_schedule(harness, receivers):
    receiver = receivers(statuses(400))
    endpoint_id, _ = harness.subscribe(receiver.url(), ["ticket.opened"])
    harness.open_ticket()

    harness.deliver()
    after_first = only_message(harness, endpoint_id)
    harness.clock.advance(5 * (1 + JITTER_FRACTION))
    harness.deliver()

    assert after_first["state"] == "pending"
    assert after_first["attempts"][0]["outcome"] == "failed"
    wait = after_first["next_attempt_at"] - after_first["attempts"][0]["attempted_at"]
    assert timedelta(seconds=5 * (1 - JITTER_FRACTION)) <= wait <= timedelta(seconds=5 * (1 + JITTER_FRACTION))
    assert only_message(harness, endpoint_id)["state"] == "delivered"


def test_exhausted_schedule_marks_the_message_failed(harness, receivers):
    receiver = receivers(lambda number, body: (500, {}, "down"))
    endpoint_id, _ = harness.subscribe(receiver.url(), ["ticket.opened"])
    harness.open_ticket()

    for _ in range(6):
        harness.deliver()
        harness.clock.advance(30)

    message = only_message(harness, endpoint_id)
    assert message["state"] == "failed"
    assert message["attempt_count"] == 4
    assert len(receiver.requests) == 4
    assert message["next_attempt_at"] is None


def test_410_gone_disables_the_endpoint(harness, receivers):
    receiver = receivers(statuses(410))
    endpoint_id, _ = harness.subscribe(receiver.url(), ["ticket.opened"])
    harness.open_ticket()

    harness.deliver()
    harness.open_ticket("After the endpoint was disabled")
    harness.clock.advance(60)
    harness.deliver()

    endpoint = harness.app.get(WebhookEndpoint, UUID(endpoint_id))
    history = harness.app.history(WebhookEndpoint, UUID(endpoint_id))
    assert endpoint.enabled is False
    assert "410 Gone" in endpoint.disabled_reason
    assert history[-1]["type"] == "endpoint.disabled"
    assert history[-1]["actor"] == {"kind": "system", "id": "webhook-worker"}
    assert [message["state"] for message in harness.messages(endpoint_id)] == ["failed"]
    assert len(receiver.requests) == 1


def test_endpoint_failing_for_five_days_is_disabled(make_harness, receivers):
    two_days = 2 * 86400
    harness = make_harness(policy=DeliveryPolicy(schedule=(two_days, two_days, two_days)))
    receiver = receivers(lambda number, body: (503, {}, "maintenance"))
    endpoint_id, _ = harness.subscribe(receiver.url(), ["ticket.opened"])
    harness.open_ticket()
    started = harness.clock()

    enabled_after = []
    for _ in range(4):
        harness.deliver()
        enabled_after.append(harness.app.get(WebhookEndpoint, UUID(endpoint_id)).enabled)
        harness.clock.current = only_message(harness, endpoint_id)["next_attempt_at"] or harness.clock()

    attempts = only_message(harness, endpoint_id)["attempts"]
    assert attempts[2]["attempted_at"] - started < timedelta(days=5)
    assert attempts[3]["attempted_at"] - started >= timedelta(days=5)
    assert enabled_after == [True, True, True, False]
    endpoint = harness.app.get(WebhookEndpoint, UUID(endpoint_id))
    assert "failed" in endpoint.disabled_reason


def test_five_day_count_restarts_after_success(make_harness, receivers):
    two_days = 2 * 86400
    # One attempt at a time, so attempts are recorded in the order they are due.
    harness = make_harness(policy=DeliveryPolicy(schedule=(two_days, two_days, two_days), concurrency=1))
    receiver = receivers(lambda number, body: (200 if b"Second" in body else 503, {}, ""))
    endpoint_id, _ = harness.subscribe(receiver.url(), ["ticket.opened"])
    harness.open_ticket("First")
    harness.deliver()
    harness.clock.advance(3 * 86400)
    harness.open_ticket("Second, delivered at once")
    harness.deliver()
    success_at = harness.clock()

    harness.clock.advance(3 * 86400)
    harness.deliver()

    assert len(receiver.requests) == 4
    assert harness.app.get(WebhookEndpoint, UUID(endpoint_id)).enabled is True
    assert harness.outbox.health(endpoint_id) == {"failing_since": harness.clock(), "last_success_at": success_at}


def test_rotation_signs_with_both_secrets_for_a_day(harness, receivers):
    receiver = receivers()
    endpoint_id, old_secret = harness.subscribe(receiver.url(), ["ticket.opened"])
    _, new_secret = harness.service.rotate_secret(Context(occurred_at=harness.clock()), UUID(endpoint_id))
    harness.open_ticket()

    harness.deliver()

    [request] = receiver.requests
    assert len(request["headers"]["webhook-signature"].split(" ")) == 2
    Webhook(old_secret).verify(request["body"], request["headers"])
    Webhook(new_secret).verify(request["body"], request["headers"])


def test_previous_secret_stops_signing_after_a_day(harness, receivers):
    receiver = receivers()
    harness.clock.advance(-86400 - 60)
    endpoint_id, old_secret = harness.subscribe(receiver.url(), ["ticket.opened"])
    _, new_secret = harness.service.rotate_secret(Context(occurred_at=harness.clock()), UUID(endpoint_id))
    harness.clock.advance(86400 + 1)
    harness.open_ticket()

    harness.deliver()

    [request] = receiver.requests
    assert len(request["headers"]["webhook-signature"].split(" ")) == 1
    Webhook(new_secret).verify(request["body"], request["headers"])
    with pytest.raises(WebhookVerificationError):
        Webhook(old_secret).verify(request["body"], request["headers"])


def test_delivery_rechecks_the_url_against_the_guard(harness, receivers):
    receiver = receivers()
    endpoint_id, _ = harness.subscribe(receiver.url(), ["ticket.opened"])
    harness.open_ticket()
    harness.dispatch()
    guarded = DeliveryWorker(
        harness.app, harness.outbox, harness.box, allow_private=False, clock=harness.clock,
        policy=harness.worker.policy,
    )

    guarded.run_once()
    guarded.close()

    message = only_message(harness, endpoint_id)
    assert receiver.requests == []
    assert message["state"] == "pending"
    assert "loopback address" in message["attempts"][0]["error"]


def test_delivery_rejects_a_host_that_now_resolves_privately(make_harness):
    harness = make_harness()
    endpoint_id, _ = harness.subscribe("https://hooks.example.com/hub", ["ticket.opened"])
    harness.open_ticket()
    harness.dispatch()
    rebound = DeliveryWorker(
        harness.app, harness.outbox, harness.box, allow_private=False, clock=harness.clock,
        resolve=lambda host, port: ["10.0.0.1"],
    )

    rebound.run_once()
    rebound.close()

    error = only_message(harness, endpoint_id)["attempts"][0]["error"]
    assert "resolves to 10.0.0.1, which is a private address" in error


def test_two_workers_never_send_a_message_twice(store_harness, receivers):
    receiver = receivers()
    endpoint_id, _ = store_harness.subscribe(receiver.url(), ["ticket.opened"])
    for number in range(40):
        store_harness.open_ticket(f"Ticket {number}")
    store_harness.dispatch()
    policy = DeliveryPolicy(batch_size=5, concurrency=4)
    workers = [
        DeliveryWorker(
            store_harness.app, store_harness.outbox, store_harness.box, allow_private=True,
            clock=store_harness.clock, policy=policy, name=f"worker-{number}",
        )
        for number in range(2)
    ]

    def drain(worker):
        while worker.run_once():
            pass

    threads = [threading.Thread(target=drain, args=(worker,)) for worker in workers]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    for worker in workers:
        worker.close()

    ids = [request["headers"]["webhook-id"] for request in receiver.requests]
    assert len(ids) == 40
    assert len(set(ids)) == 40
    assert {message["state"] for message in store_harness.messages(endpoint_id)} == {"delivered"}


def test_concurrent_claims_are_disjoint(store_harness):
    store_harness.subscribe("https://hooks.example.com/a", ["ticket.opened"])
    for number in range(6):
        store_harness.open_ticket(f"Ticket {number}")
    store_harness.dispatch()
    now = store_harness.clock().timestamp()

    first = store_harness.outbox.claim(now, 4, 60)
    second = store_harness.outbox.claim(now, 4, 60)

    assert len(first) == 4
    assert len(second) == 2
    assert not {claim.message_id for claim in first} & {claim.message_id for claim in second}


WORKER_SCRIPT = """
import sys
from hub.application import create_application
from hub.secrets import SecretBox
from hub.settings import load_settings
from projections.db import Database
from webhooks.outbox import Outbox
from webhooks.worker import DeliveryWorker

app = create_application(load_settings())
outbox = Outbox(app, Database.for_application(app))
worker = DeliveryWorker(app, outbox, SecretBox(sys.argv[1]), allow_private=True, name="doomed")
print("claiming", flush=True)
worker.run_once()
print("finished", flush=True)
"""


def test_worker_killed_during_a_delivery_loses_no_message(harness, receivers, tmp_path):
    arrived = threading.Event()
    release = threading.Event()

    def respond(number, body):
        if number == 1:
            arrived.set()
            release.wait(30)
        return 200, {}, "ok"

    receiver = receivers(respond)
    endpoint_id, secret = harness.subscribe(receiver.url(), ["ticket.opened"])
    harness.open_ticket()
    harness.dispatch()
    environ = {
        **os.environ,
        "HUB_DATABASE_URL": f"sqlite:///{tmp_path}/hub.sqlite3",
        "PYTHONPATH": str(REPOSITORY),
    }
    process = subprocess.Popen(
        [sys.executable, "-c", WORKER_SCRIPT, harness.settings.cipher_key], env=environ, cwd=REPOSITORY,
        stdout=subprocess.PIPE, stderr=subprocess.PIPE,
    )
    try:
        assert arrived.wait(60), process.stderr.read1().decode() if process.poll() is not None else "no request"
        process.send_signal(signal.SIGKILL)
        process.wait(30)
    finally:
        release.set()
        if process.poll() is None:
            process.kill()
    stranded = only_message(harness, endpoint_id)

    # The killed worker leased the message on the real clock, some seconds after the fake one started.
    harness.clock.advance(harness.worker.policy.lease_seconds + 60)
    harness.deliver()
    harness.clock.advance(5 * (1 + JITTER_FRACTION))
    harness.deliver()

    assert process.returncode == -signal.SIGKILL
    assert stranded["state"] == "delivering"
    message = only_message(harness, endpoint_id)
    assert message["state"] == "delivered"
    assert [attempt["outcome"] for attempt in message["attempts"]] == ["abandoned", "success"]
    first, second = receiver.requests
    assert first["headers"]["webhook-id"] == second["headers"]["webhook-id"] == message["id"]
    assert first["body"] == second["body"]
    Webhook(secret).verify(second["body"], second["headers"])


def test_late_result_replaces_abandoned_attempt(harness, receivers):
    receiver = receivers()
    endpoint_id, _ = harness.subscribe(receiver.url(), ["ticket.opened"])
    harness.open_ticket()
    harness.dispatch()
    [claim] = harness.outbox.claim(harness.clock().timestamp(), 10, 60)
    late = harness.worker.attempt(claim)
    harness.clock.advance(61)
    harness.worker.run_once()
    recovered = only_message(harness, endpoint_id)

    harness.outbox.complete([(late.claim, late.record, late.decision)])

    assert [attempt["outcome"] for attempt in recovered["attempts"]] == ["abandoned"]
    message = only_message(harness, endpoint_id)
    assert message["state"] == "delivered"
    assert [attempt["outcome"] for attempt in message["attempts"]] == ["success"]
    assert len(receiver.requests) == 1


@pytest.mark.parametrize("value", ["0", "-2", "two", "\u00b2", "\u0663"])
def test_concurrency_setting_rejects_non_ascii_digits(value):
    with pytest.raises(ConfigurationError, match="^HUB_WEBHOOKS_CONCURRENCY .* is invalid; use a whole number of 1 or more"):
        policy_from_env({"HUB_WEBHOOKS_CONCURRENCY": value})
