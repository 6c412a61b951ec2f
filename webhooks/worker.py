"""The webhook delivery worker: claims due messages, sends them and records every attempt.

Delivery is at least once per message, in no particular order. A worker leases
the messages it claims. If it stops during an attempt (a crash, a kill, a lost
machine), the lease runs out, and any worker then records that attempt as
abandoned and schedules the message again under the same message id. The
receiver may therefore see a message twice and drop the duplicate by its
``webhook-id``.

Each attempt checks the URL again (DNS may have changed since subscription),
signs the stored body bytes with the endpoint's current secret (and the
previous one for a day after a rotation), and sends with no redirects, a
10-second timeout and a 1 KB response prefix. ``retry.classify`` decides what
happens next: success, a retry on the schedule (honouring ``Retry-After``), a
failed attempt that still follows the schedule, or 410 Gone, which disables the
endpoint. An endpoint whose every attempt has failed for five days is disabled
as well. Both record ``endpoint.disabled``, which other endpoints can subscribe to.

``start_in_background`` runs the dispatch view and a delivery loop on threads,
for the embedded mode; ``hub webhooks work`` runs the same in a worker process.
"""

from __future__ import annotations

import logging
import math
import os
import random
import socket
import threading
from collections.abc import Callable, Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from typing import Any
from uuid import UUID

import requests

from hub.domain import Context
from hub.domain.errors import StateConflictError
from hub.secrets import SecretBox, load_secret_box
from hub.settings import ConfigurationError, Settings, load_settings
from projections.db import Database
from projections.runner import DEFAULT_PAGE_SIZE, ProjectionRunner
from webhooks.endpoint import WebhookEndpoint
from webhooks.guard import Resolver, UnsafeURLError, check_url, guarded_session
from webhooks.outbox import (
    ABANDONED,
    DELIVERED,
    FAILED,
    PENDING,
    AttemptRecord,
    Claim,
    Clock,
    Decision,
    Outbox,
    WebhookDispatchView,
    from_seconds,
    to_seconds,
    utc_now,
)
from webhooks.retry import DEFAULT_SCHEDULE_SECONDS, classify, next_delay, parse_retry_after
from webhooks.sender import DEFAULT_MAX_RESPONSE_BYTES, DEFAULT_TIMEOUT_SECONDS, AttemptResult, send

logger = logging.getLogger(__name__)

SCHEDULE_ENV = "HUB_WEBHOOKS_RETRY_SCHEDULE"
CONCURRENCY_ENV = "HUB_WEBHOOKS_CONCURRENCY"
LEASE_ENV = "HUB_WEBHOOKS_LEASE_SECONDS"


@dataclass(frozen=True)
class DeliveryPolicy:
    """Settings for attempts and retries: schedule, timeouts, leases and concurrency."""

    schedule: tuple[float, ...] = DEFAULT_SCHEDULE_SECONDS
    """Seconds before retry 1, 2, ...; one attempt more than there are steps."""

    timeout: float = DEFAULT_TIMEOUT_SECONDS
    max_response_bytes: int = DEFAULT_MAX_RESPONSE_BYTES

    lease_seconds: float = 120.0
    """How long a claimed message stays with its worker before another may take it over.

    It must exceed the longest attempt; see the note in ``sender._post`` on
    receivers that trickle their response. One lease covers a whole claimed
    batch, whose attempts run ``concurrency`` at a time, so a batch to slow
    receivers needs up to ``timeout * batch_size / concurrency`` seconds (62.5 s
    with the defaults) and more when a receiver trickles.
    """

    batch_size: int = 50
    concurrency: int = 8
    """Attempts one worker sends at the same time, on threads.

    NOTE: there is no limit per endpoint, so a batch for one slow receiver can
    hold every sending thread for up to ``timeout`` seconds.
    """

    disable_after: timedelta = field(default=timedelta(days=5))
    """An endpoint whose attempts have all failed for this long is disabled."""


def policy_from_env(environ: Mapping[str, str] | None = None) -> DeliveryPolicy:
    """Read ``HUB_WEBHOOKS_RETRY_SCHEDULE`` (comma-separated seconds), ``HUB_WEBHOOKS_CONCURRENCY`` and ``HUB_WEBHOOKS_LEASE_SECONDS``."""
    environ = os.environ if environ is None else environ
    policy = DeliveryPolicy()
    raw_schedule = environ.get(SCHEDULE_ENV, "").strip()
    if raw_schedule:
        try:
            schedule = tuple(float(step) for step in raw_schedule.split(","))
        except ValueError:
            schedule = ()
        if not schedule or any(not step > 0 for step in schedule):
            msg = (
                f"{SCHEDULE_ENV} {raw_schedule!r} is invalid; use positive seconds separated by commas, "
                "such as 5,300,1800,7200,18000,36000,36000"
            )
            raise ConfigurationError(msg)
        policy = replace(policy, schedule=schedule)
    raw_concurrency = environ.get(CONCURRENCY_ENV, "").strip()
    if raw_concurrency:
        if not (raw_concurrency.isascii() and raw_concurrency.isdigit()) or int(raw_concurrency) < 1:
            msg = f"{CONCURRENCY_ENV} {raw_concurrency!r} is invalid; use a whole number of 1 or more"
            raise ConfigurationError(msg)
        policy = replace(policy, concurrency=int(raw_concurrency))
    raw_lease = environ.get(LEASE_ENV, "").strip()
    if raw_lease:
        try:
            lease = float(raw_lease)
        except ValueError:
            lease = 0.0
        # A lease that can run out during an attempt lets a second worker send the
        # same message while the first attempt is still waiting for its answer.
        if not (math.isfinite(lease) and lease > policy.timeout):
            msg = (
                f"{LEASE_ENV} {raw_lease!r} is invalid; use seconds greater than the "
                f"{policy.timeout:g}-second attempt timeout, such as the default of {policy.lease_seconds:g}"
            )
            raise ConfigurationError(msg)
        policy = replace(policy, lease_seconds=lease)
    return policy


class DeliveryWorker:
    """Sends due webhook messages and records their attempts.

    ``clock`` returns the current aware datetime. It stamps attempts, sets
    ``webhook-timestamp`` and decides which messages are due, so a test can
    move it forward instead of sleeping.
    """

    def __init__(
        self,
        app: Any,
        outbox: Outbox,
        secret_box: SecretBox,
        *,
        allow_private: bool,
        policy: DeliveryPolicy | None = None,
        clock: Clock = utc_now,
        rng: random.Random | None = None,
        name: str | None = None,
        resolve: Resolver | None = None,
        on_event_recorded: Callable[[], None] | None = None,
    ) -> None:
        self.app = app
        self.outbox = outbox
        self.secret_box = secret_box
        self.allow_private = allow_private
        self.policy = policy or DeliveryPolicy()
        self.clock = clock
        self.rng = rng or random.Random()
        self.name = name or f"{socket.gethostname()}:{os.getpid()}"
        self.resolve = resolve
        self.on_event_recorded = on_event_recorded
        self._local = threading.local()
        self._sessions: list[requests.Session] = []
        self._sessions_lock = threading.Lock()
        self._executor: ThreadPoolExecutor | None = None
        self._wake = threading.Event()

    # One pass.

    def run_once(self) -> int:
        """Recover expired leases, then claim, send and record one batch of due messages.

        Returns the number of attempts recorded (abandoned ones included).
        """
        now = self.clock()
        recovered = self._recover_expired(now)
        claims = self.outbox.claim(to_seconds(now), self.policy.batch_size, self.policy.lease_seconds)
        if not claims:
            return recovered
        if len(claims) == 1 or self.policy.concurrency == 1:
            attempts = [self._attempt_logged(claim) for claim in claims]
        else:
            attempts = list(self._pool().map(self._attempt_logged, claims))
        made = [attempt for attempt in attempts if attempt is not None]
        # One transaction records the whole batch, which keeps commits (and
        # SQLite's fsyncs) to one per batch rather than one per message.
        failing_since = self.outbox.complete([(a.claim, a.record, a.decision) for a in made])
        for attempt in made:
            self._log_attempt(attempt)
        self._disable_failing_endpoints(made, failing_since)
        return recovered + len(claims)

    def _recover_expired(self, now: datetime) -> int:
        claims = self.outbox.expired_leases(to_seconds(now), self.policy.batch_size)
        if not claims:
            return 0
        outcomes = []
        for claim in claims:
            logger.warning(
                "Webhook message %s to endpoint %s: lease of attempt %d expired; scheduling it again",
                claim.message_id, claim.endpoint_id, claim.attempt_number,
            )
            record = AttemptRecord(
                attempted_at=to_seconds(now), webhook_timestamp=None, status=None, latency_ms=None,
                response_body="",
                error="the worker stopped or overran its lease during this attempt; the receiver may have got it",
                outcome=ABANDONED, worker=self.name,
            )
            outcomes.append((claim, record, self._decide(claim, "retry", None, now)))
        self.outbox.complete(outcomes)
        return len(claims)

    def _attempt_logged(self, claim: Claim) -> _Attempt | None:
        try:
            return self.attempt(claim)
        except Exception:
            # The lease runs out and a later pass retries the message.
            logger.exception(
                "Webhook message %s to endpoint %s: attempt %d failed inside the worker",
                claim.message_id, claim.endpoint_id, claim.attempt_number,
            )
            return None

    def attempt(self, claim: Claim) -> _Attempt:
        """Send one attempt for a claimed message and decide what happens next; record nothing yet."""
        started = self.clock()
        timestamp = int(started.timestamp())
        result = self._send(claim, timestamp)
        finished = self.clock()
        outcome = classify(result.status, result.error)
        retry_after = None
        if outcome == "retry":
            retry_after = parse_retry_after(result.retry_after, finished)
        record = AttemptRecord(
            attempted_at=to_seconds(started), webhook_timestamp=timestamp, status=result.status,
            latency_ms=result.latency_ms, response_body=result.response_body, error=result.error,
            outcome=outcome, worker=self.name,
        )
        return _Attempt(claim, record, self._decide(claim, outcome, retry_after, finished), result, finished)

    def _disable_failing_endpoints(self, attempts: list[_Attempt], failing_since: dict[str, float | None]) -> None:
        handled: set[str] = set()
        for attempt in attempts:
            endpoint_id = attempt.claim.endpoint_id
            if endpoint_id in handled:
                continue
            if attempt.record.outcome == "gone":
                handled.add(endpoint_id)
                self.disable_endpoint(
                    endpoint_id,
                    f"the receiver answered 410 Gone to message {attempt.claim.message_id} "
                    f"(attempt {attempt.claim.attempt_number})",
                )
                continue
            since = from_seconds(failing_since.get(endpoint_id))
            if since is not None and attempt.finished - since >= self.policy.disable_after:
                handled.add(endpoint_id)
                result = attempt.result
                self.disable_endpoint(
                    endpoint_id,
                    f"every delivery attempt since {since.isoformat()} failed; the last was "
                    f"{attempt.record.outcome} ({result.status or result.error})",
                )

    def _send(self, claim: Claim, timestamp: int) -> AttemptResult:
        try:
            check_url(claim.url, self.allow_private, resolve=self.resolve)
        except UnsafeURLError as error:
            return _failed_before_sending(str(error))
        try:
            secrets = [self.secret_box.decrypt(ciphertext) for ciphertext in claim.secret_ciphertexts]
        except Exception as error:  # noqa: BLE001 - the cipher raises several unrelated types
            logger.error(
                "Webhook endpoint %s: its signing secret could not be decrypted (%s)",
                claim.endpoint_id, type(error).__name__,
            )
            return _failed_before_sending(
                "the signing secret could not be decrypted; check that HUB_CIPHER_KEY is the key it was stored with"
            )
        return send(
            claim.url, claim.message_id, claim.body, secrets,
            timestamp=timestamp, timeout=self.policy.timeout,
            max_response_bytes=self.policy.max_response_bytes, session=self._session(),
        )

    def _decide(self, claim: Claim, outcome: str, retry_after: float | None, now: datetime) -> Decision:
        if outcome == "success":
            return Decision(DELIVERED, claim.retry_step, None)
        step = claim.retry_step + 1
        if outcome == "gone":
            return Decision(FAILED, step, None)
        delay = next_delay(step, self.policy.schedule, self.rng, retry_after)
        if delay is None:
            return Decision(FAILED, step, None)
        # Computed on the datetime, so the stored seconds convert back to the same microsecond.
        return Decision(PENDING, step, to_seconds(now + timedelta(seconds=delay)))

    def _log_attempt(self, attempt: _Attempt) -> None:
        claim, outcome, decision = attempt.claim, attempt.record.outcome, attempt.decision
        if outcome == "success":
            logger.debug(
                "Webhook message %s to endpoint %s delivered on attempt %d",
                claim.message_id, claim.endpoint_id, claim.attempt_number,
            )
            return
        what = attempt.result.status if attempt.result.status is not None else attempt.result.error
        next_at = from_seconds(decision.next_attempt_at)
        if decision.state == PENDING and next_at is not None:
            logger.warning(
                "Webhook message %s to endpoint %s: attempt %d %s (%s); retrying at %s",
                claim.message_id, claim.endpoint_id, claim.attempt_number, outcome, what, next_at.isoformat(),
            )
        else:
            logger.error(
                "Webhook message %s to endpoint %s: attempt %d %s (%s); giving up after %d attempts",
                claim.message_id, claim.endpoint_id, claim.attempt_number, outcome, what, claim.attempt_number,
            )

    def disable_endpoint(self, endpoint_id: str, reason: str) -> bool:
        """Record ``endpoint.disabled`` for an endpoint; return False when it was already disabled or deleted."""
        ctx = Context(
            actor_kind="system", actor_id="webhook-worker", source_name="webhooks", occurred_at=self.clock()
        )
        try:
            self.app.execute(WebhookEndpoint, UUID(endpoint_id), "disable", ctx, reason=reason)
        except StateConflictError:
            return False
        logger.warning("Webhook endpoint %s disabled: %s", endpoint_id, reason)
        if self.on_event_recorded is not None:
            self.on_event_recorded()
        return True

    # Threads and sessions.

    def _pool(self) -> ThreadPoolExecutor:
        if self._executor is None:
            self._executor = ThreadPoolExecutor(self.policy.concurrency, thread_name_prefix="webhook-send")
        return self._executor

    def _session(self) -> requests.Session:
        # requests sessions are not thread-safe, so each sending thread has its own.
        session = getattr(self._local, "session", None)
        if session is None:
            session = guarded_session(self.allow_private)
            self._local.session = session
            with self._sessions_lock:
                self._sessions.append(session)
        return session

    # Running until stopped.

    def wake(self) -> None:
        """Look for due messages now instead of at the next poll."""
        self._wake.set()

    def run_forever(self, stop_event: threading.Event, poll_interval: float = 0.25) -> None:
        """Deliver until ``stop_event`` is set, sleeping at most ``poll_interval`` seconds when idle."""
        logger.info("Webhook delivery worker %s started (concurrency %d)", self.name, self.policy.concurrency)
        while not stop_event.is_set():
            try:
                attempts = self.run_once()
            except Exception:
                logger.exception("Webhook delivery worker %s: a pass failed; retrying", self.name)
                stop_event.wait(max(poll_interval, 1.0))
                continue
            if attempts:
                continue
            self._wake.wait(self._idle_wait(poll_interval))
            self._wake.clear()
        logger.info("Webhook delivery worker %s stopped", self.name)

    def _idle_wait(self, poll_interval: float) -> float:
        try:
            due = self.outbox.next_due()
        except Exception:
            logger.exception("Webhook delivery worker %s: reading the next due time failed", self.name)
            return poll_interval
        if due is None:
            return poll_interval
        return min(poll_interval, max(0.0, due - to_seconds(self.clock())))

    def close(self) -> None:
        if self._executor is not None:
            self._executor.shutdown(wait=True)
            self._executor = None
        with self._sessions_lock:
            for session in self._sessions:
                session.close()
            self._sessions.clear()


@dataclass(frozen=True)
class _Attempt:
    """One attempt made and decided, waiting to be recorded with the rest of its batch."""

    claim: Claim
    record: AttemptRecord
    decision: Decision
    result: AttemptResult
    finished: datetime


def _failed_before_sending(error: str) -> AttemptResult:
    return AttemptResult(
        status=None, latency_ms=0.0, response_body="", error=error, retry_after=None, request_headers={}
    )


class DispatchRunner(ProjectionRunner):
    """A projection runner for the dispatch view that reports when it queued messages."""

    def __init__(
        self, app: Any, view: WebhookDispatchView, db: Database | None = None,
        on_applied: Callable[[], None] | None = None, *, create_tables: bool = True,
    ) -> None:
        super().__init__(app, [view], db, create_tables=create_tables)
        self.on_applied = on_applied

    def catch_up(self, page_size: int = DEFAULT_PAGE_SIZE) -> int:
        applied = super().catch_up(page_size)
        if applied and self.on_applied is not None:
            self.on_applied()
        return applied


class WebhookRuntime:
    """The dispatch runner and a delivery worker on two threads, with their shared objects.

    ``wake()`` makes both look for work now, so call it after recording events
    that should be delivered at once. ``stop()`` ends both threads.
    """

    def __init__(
        self,
        app: Any,
        *,
        settings: Settings | None = None,
        db: Database | None = None,
        clock: Clock = utc_now,
        policy: DeliveryPolicy | None = None,
        allow_private: bool | None = None,
        secret_box: SecretBox | None = None,
        poll_interval: float = 0.25,
    ) -> None:
        settings = settings or load_settings()
        self.app = app
        self.db = db or Database.for_application(app)
        self._owns_db = db is None
        self.clock = clock
        self.poll_interval = poll_interval
        self.outbox = Outbox(app, self.db)
        self.view = WebhookDispatchView(clock)
        self.create_tables = settings.create_tables
        self.dispatcher = DispatchRunner(
            app, self.view, self.db, on_applied=self.wake_worker, create_tables=settings.create_tables
        )
        if allow_private is None:
            allow_private = settings.webhooks_allow_private
        self.worker = DeliveryWorker(
            app, self.outbox, secret_box or load_secret_box(settings), allow_private=allow_private,
            policy=policy or policy_from_env(), clock=clock, on_event_recorded=self.wake_dispatcher,
        )
        self._stop = threading.Event()
        self._dispatch_wake = threading.Event()
        self._threads: list[threading.Thread] = []

    def setup(self) -> None:
        if self.create_tables:
            self.outbox.setup()
        self.dispatcher.setup()

    def start(self) -> WebhookRuntime:
        self.setup()
        self._threads = [
            threading.Thread(target=self._run_dispatcher, name="webhook-dispatch", daemon=True),
            threading.Thread(
                target=self.worker.run_forever, args=(self._stop, self.poll_interval),
                name="webhook-delivery", daemon=True,
            ),
        ]
        for thread in self._threads:
            thread.start()
        return self

    def _run_dispatcher(self) -> None:
        while not self._stop.is_set():
            try:
                self.dispatcher.run_forever(self._stop, self.poll_interval, wake_event=self._dispatch_wake)
            except Exception:
                logger.exception("Webhook dispatch failed; restarting it in 5 seconds")
                self._stop.wait(5.0)

    def wake_worker(self) -> None:
        self.worker.wake()

    def wake_dispatcher(self) -> None:
        self._dispatch_wake.set()

    def wake(self) -> None:
        self.wake_dispatcher()
        self.wake_worker()

    def wait_for_dispatch(self, position: int, timeout: float = 5.0) -> None:
        """Block until the dispatch view has applied ``position``; raise TimeoutError after ``timeout`` seconds."""
        self.wake_dispatcher()
        self.dispatcher.wait(position, timeout)

    def stop(self, timeout: float = 15.0) -> None:
        self._stop.set()
        self.wake()
        for thread in self._threads:
            thread.join(timeout)
        self.worker.close()
        if self._owns_db:
            self.db.close()


def start_in_background(app: Any, settings: Settings | None = None, **options: Any) -> WebhookRuntime:
    """Set up the webhook tables and start dispatching and delivering on threads of this process."""
    return WebhookRuntime(app, settings=settings, **options).start()

