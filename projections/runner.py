"""Follow the global event stream and keep SQL views up to date.

A :class:`View` owns some tables and applies pages of events to them. The
:class:`ProjectionRunner` reads the stream in pages, decodes each page once and
hands each view the events it has not seen. It commits the view's rows together
with its new position in ``projection_positions``, in one transaction. A crash
anywhere before that commit leaves neither rows nor position, so the page is
applied again after a restart. A view that writes only through the runner's
cursor therefore applies each event once (events passed over by
:meth:`ProjectionRunner.skip_to` are not applied at all).

Several runners may follow the same database, for example the embedded runner
and one or more ``hub worker`` processes. Each transaction locks the position
rows it advances (``SELECT ... FOR UPDATE`` on PostgreSQL, the database write
lock on SQLite) and skips a view whose position moved since the page was read.
"""

from __future__ import annotations

import logging
import sqlite3
import threading
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any, ClassVar

import psycopg
from eventsourcing.persistence import InterfaceError, OperationalError
from eventsourcing.utils import get_topic

from hub.settings import ConfigurationError
from projections.db import Cursor, Database, table_exists

logger = logging.getLogger(__name__)


def is_transient(error: BaseException) -> bool:
    """Tell whether a database error can pass by itself: a lost connection, or a lock held too long."""
    if isinstance(error, (psycopg.OperationalError, psycopg.InterfaceError)):
        return True
    if isinstance(error, (sqlite3.OperationalError, OperationalError, InterfaceError)):
        text = str(error).lower()
        return any(word in text for word in ("locked", "busy", "connection", "timed out", "timeout"))
    return False


POSITIONS_TABLE = "projection_positions"

CREATE_POSITIONS_TABLE = (
    f"CREATE TABLE IF NOT EXISTS {POSITIONS_TABLE} ("
    "name TEXT PRIMARY KEY, "
    "position BIGINT NOT NULL, "
    "version INTEGER NOT NULL)"
)

DEFAULT_PAGE_SIZE = 1000

# Key of the PostgreSQL advisory lock taken while creating tables (any fixed bigint).
SETUP_LOCK_KEY = 7_305_106_915_428_042

# Maximum pause, in seconds, between retries after a transient database error.
MAX_RETRY_PAUSE = 30.0

EventPage = list[tuple[int, Any]]


class View:
    """A read model stored in SQL tables and fed by the event stream.

    Subclasses set these class attributes:

    - ``name``: unique, and the key of the view's position.
    - ``tables``: the tables that the default :meth:`drop` drops.
    - ``topics`` (optional): event classes or topic strings. Empty means every event.
    - ``version``: raise it when the tables or their meaning change, and the
      runner rebuilds the view when it next starts.
    """

    name: ClassVar[str]
    tables: ClassVar[tuple[str, ...]] = ()
    topics: ClassVar[tuple[type | str, ...]] = ()
    version: ClassVar[int] = 1

    def create(self, cursor: Cursor) -> None:
        """Create the view's tables and indexes if they do not exist."""
        raise NotImplementedError

    def drop(self, cursor: Cursor) -> None:
        """Drop the view's tables."""
        for table in self.tables:
            cursor.execute(f"DROP TABLE IF EXISTS {table}")

    def apply_page(self, cursor: Cursor, events: EventPage) -> None:
        """Apply ``(position, domain event)`` pairs, in stream order, inside the caller's transaction.

        It must only write SQL through ``cursor``: the runner commits those rows
        together with the view's new position, or rolls both back.
        """
        raise NotImplementedError

    def after_catch_up(self, db: Database) -> None:
        """Do work that follows a catch-up, in transactions of its own; by default nothing.

        The runner calls it at the end of every :meth:`ProjectionRunner.catch_up`,
        also when no event arrived, so a view can finish deferred work.
        """

    def topic_names(self) -> frozenset[str]:
        return frozenset(topic if isinstance(topic, str) else get_topic(topic) for topic in self.topics)


@dataclass
class _Follower:
    """A view with its topic names and its last read position."""

    view: View
    topics: frozenset[str]
    position: int = 0


class ProjectionRunner:
    """Keep a set of views up to date with an application's event stream.

    With ``create_tables`` false, :meth:`setup` creates nothing and only checks
    that ``hub db init`` has set up every view at its current version.
    """

    def __init__(
        self, app: Any, views: Iterable[View], db: Database | None = None, *, create_tables: bool = True
    ) -> None:
        self.app = app
        self.create_tables = create_tables
        self.db = db or Database.for_application(app)
        self._owns_db = db is None
        views = list(views)
        names = [view.name for view in views]
        duplicates = sorted({name for name in names if names.count(name) > 1})
        if duplicates:
            msg = f"view name {duplicates[0]!r} is used by more than one view; names must be unique"
            raise ValueError(msg)
        self._followers = {view.name: _Follower(view, view.topic_names()) for view in views}
        self._progress = threading.Condition()
        self._setup_done = False

    @property
    def views(self) -> list[View]:
        return [follower.view for follower in self._followers.values()]

    # Setting up tables.

    def setup(self) -> None:
        """Create the positions table and every view's tables; rebuild views whose version changed."""
        if not self.create_tables:
            self._check_setup()
            return
        stale: list[str] = []
        with self.db.transaction() as cursor:
            self._lock_setup(cursor)
            cursor.execute(CREATE_POSITIONS_TABLE)
            cursor.execute(f"SELECT name, position, version FROM {POSITIONS_TABLE}")
            stored = {name: (position, version) for name, position, version in cursor.fetchall()}
            for name, follower in self._followers.items():
                follower.view.create(cursor)
                if name not in stored:
                    cursor.execute(
                        f"INSERT INTO {POSITIONS_TABLE} (name, position, version) VALUES (?, 0, ?) "
                        "ON CONFLICT (name) DO NOTHING",
                        (name, follower.view.version),
                    )
                elif stored[name][1] != follower.view.version:
                    stale.append(name)
        self._setup_done = True
        for name in stale:
            logger.info(
                "View %s changed version (stored %s, code %s); rebuilding it",
                name, stored[name][1], self._followers[name].view.version,
            )
            self.rebuild(name, catch_up=False)

    def _check_setup(self) -> None:
        """Raise ConfigurationError unless every view has its position row at its current version."""
        with self.db.transaction(readonly=True) as cursor:
            stored: dict[str, int] = {}
            if table_exists(cursor, POSITIONS_TABLE):
                cursor.execute(f"SELECT name, version FROM {POSITIONS_TABLE}")
                stored = {name: int(version) for name, version in cursor.fetchall()}
        missing = [name for name in self._followers if name not in stored]
        changed = [
            name for name, follower in self._followers.items()
            if name in stored and stored[name] != follower.view.version
        ]
        if missing or changed:
            problems = []
            if missing:
                problems.append(f"missing: {', '.join(missing)}")
            if changed:
                problems.append(f"at another version: {', '.join(changed)}")
            msg = (
                f"views are not set up in this database ({'; '.join(problems)}); run 'hub db init', "
                "because HUB_CREATE_TABLE is off and this process creates no tables"
            )
            raise ConfigurationError(msg)
        self._setup_done = True

    def _lock_setup(self, cursor: Cursor) -> None:
        # Two PostgreSQL sessions running CREATE TABLE IF NOT EXISTS at once can
        # both try to create the table, and one fails, so runners set up in turn.
        # On SQLite the write lock of BEGIN IMMEDIATE already does this.
        if self.db.dialect == "postgresql":
            cursor.execute("SELECT pg_advisory_xact_lock(?)", (SETUP_LOCK_KEY,))

    def skip_to(self, position: int) -> None:
        """Mark every event up to ``position`` as applied without applying it.

        For views whose effects must not repeat, such as webhook dispatch after
        the events were copied from a store that already dispatched them.
        """
        self._ensure_setup()
        names = list(self._followers)
        with self.db.transaction() as cursor:
            self._lock_positions(cursor, names)
            for name in names:
                cursor.execute(
                    f"UPDATE {POSITIONS_TABLE} SET position = ? WHERE name = ? AND position < ?",
                    (position, name, position),
                )
        logger.info("Projections %s skipped to position %d", ", ".join(names), position)

    def _ensure_setup(self) -> None:
        if not self._setup_done:
            self.setup()

    def rebuild(self, name: str | None = None, *, catch_up: bool = True, page_size: int = DEFAULT_PAGE_SIZE) -> int:
        """Drop a view (every view when ``name`` is None), recreate it and replay it from the first event.

        The drop, the new empty tables and the reset position commit together.
        The replay then commits page by page like any catch-up, so queries see
        the view fill up. Returns the number of events applied.
        """
        if name is not None and name not in self._followers:
            known = ", ".join(sorted(self._followers))
            msg = f"projection {name!r} is not known; use one of {known}"
            raise LookupError(msg)
        if not self._setup_done:
            with self.db.transaction() as cursor:
                self._lock_setup(cursor)
                cursor.execute(CREATE_POSITIONS_TABLE)
            self._setup_done = True
        names = [name] if name is not None else list(self._followers)
        with self.db.transaction() as cursor:
            self._lock_positions(cursor, names)
            for view_name in names:
                view = self._followers[view_name].view
                view.drop(cursor)
                view.create(cursor)
                cursor.execute(
                    f"INSERT INTO {POSITIONS_TABLE} (name, position, version) VALUES (?, 0, ?) "
                    "ON CONFLICT (name) DO UPDATE SET position = 0, version = excluded.version",
                    (view_name, view.version),
                )
                logger.info("Projection %s dropped and recreated; replaying from the first event", view_name)
        if not catch_up:
            return 0
        return self.catch_up(page_size=page_size)

    # Following the stream.

    def catch_up(self, page_size: int = DEFAULT_PAGE_SIZE) -> int:
        """Apply every recorded event that the views have not applied yet.

        Each page commits in one transaction per group of views at the same
        position. Returns the number of events applied to at least one view.
        """
        self._ensure_setup()
        applied = 0
        while True:
            positions = self._read_positions()
            low = min(positions.values(), default=0)
            notifications = self.app.recorder.select_notifications(
                start=low, limit=page_size, inclusive_of_start=False
            )
            if not notifications:
                break
            applied += self._apply_notifications(notifications, positions)
        for follower in self._followers.values():
            follower.view.after_catch_up(self.db)
        return applied

    def _apply_notifications(self, notifications: Sequence[Any], positions: dict[str, int]) -> int:
        last = notifications[-1].id
        behind = {name: position for name, position in positions.items() if position < last}

        # Decode each notification once, and only those that some view needs.
        needs_every_topic = any(not self._followers[name].topics for name in behind)
        topics_needed = set().union(*(self._followers[name].topics for name in behind))
        low = min(behind.values())
        decoded: list[tuple[int, str, Any]] = []
        to_domain_event = self.app.mapper.to_domain_event
        for notification in notifications:
            if notification.id <= low:
                continue
            if needs_every_topic or notification.topic in topics_needed:
                decoded.append((notification.id, notification.topic, to_domain_event(notification)))

        # Views at the same position share one transaction per page.
        groups: dict[int, list[str]] = {}
        for name, position in behind.items():
            groups.setdefault(position, []).append(name)
        applied: set[int] = set()
        for start, names in sorted(groups.items()):
            applied.update(self._commit_page(start, last, names, decoded))
        return len(applied)

    def _commit_page(
        self, start: int, last: int, names: list[str], decoded: list[tuple[int, str, Any]]
    ) -> set[int]:
        """Apply one page to the views in ``names`` and advance them to ``last``; return the positions applied."""
        applied: set[int] = set()
        with self.db.transaction() as cursor:
            current = self._lock_positions(cursor, names)
            for name in names:
                if current.get(name) != start:
                    # Another runner committed this page for the view meanwhile.
                    logger.debug(
                        "Projection %s moved from %s to %s in another runner; skipping the page",
                        name, start, current.get(name),
                    )
                    continue
                follower = self._followers[name]
                page = _select(decoded, start, follower.topics)
                if page:
                    follower.view.apply_page(cursor, page)
                    applied.update(position for position, _ in page)
                cursor.execute(
                    f"UPDATE {POSITIONS_TABLE} SET position = ? WHERE name = ?", (last, name)
                )
        with self._progress:
            self._progress.notify_all()
        if applied:
            logger.debug("Projections %s applied %d events up to position %d", ",".join(names), len(applied), last)
        return applied

    def _lock_positions(self, cursor: Cursor, names: list[str]) -> dict[str, int]:
        """Lock the position rows of ``names`` for this transaction and return them."""
        if not names:
            return {}
        placeholders = ", ".join("?" for _ in names)
        lock = " FOR UPDATE" if self.db.dialect == "postgresql" else ""
        # ORDER BY name makes every runner lock position rows in the same order,
        # so two runners cannot wait on each other's position rows in a cycle.
        cursor.execute(
            f"SELECT name, position FROM {POSITIONS_TABLE} WHERE name IN ({placeholders}) "
            f"ORDER BY name{lock}",
            sorted(names),
        )
        return {name: position for name, position in cursor.fetchall()}

    def _read_positions(self) -> dict[str, int]:
        with self.db.transaction(readonly=True) as cursor:
            cursor.execute(f"SELECT name, position FROM {POSITIONS_TABLE}")
            stored = dict(cursor.fetchall())
        positions = {name: int(stored.get(name, 0)) for name in self._followers}
        for name, position in positions.items():
            self._followers[name].position = position
        return positions

    def run_forever(self, stop_event: threading.Event, poll_interval: float = 1.0, wake_event: threading.Event | None = None) -> None:
        """Catch up, then follow new events until ``stop_event`` is set.

        On PostgreSQL the runner LISTENs on the event store's notification
        channel and catches up as soon as a commit is announced, so
        ``poll_interval`` is only a fallback there. On SQLite it polls every
        ``poll_interval`` seconds, or at once when ``wake_event`` is set.
        """
        self._ensure_setup()
        postgres = self.db.dialect == "postgresql"
        listener = _Listener.open(self.app) if postgres else None
        logger.info(
            "Projection runner started for %s (%s, poll every %.2fs)",
            ", ".join(self._followers), "LISTEN/NOTIFY" if listener else "polling", poll_interval,
        )
        failures = 0
        try:
            while not stop_event.is_set():
                try:
                    applied = self.catch_up()
                    if postgres and listener is None:
                        listener = _Listener.open(self.app)
                except Exception as error:
                    if not is_transient(error):
                        raise
                    # A lost connection or a lock held too long by another process
                    # passes by itself, so retry with a growing pause.
                    failures += 1
                    pause = min(poll_interval * 2 ** failures, MAX_RETRY_PAUSE)
                    logger.warning(
                        "Projection runner failed to catch up (%s: %s); retrying in %.1fs (failure %d)",
                        type(error).__name__, error, pause, failures,
                    )
                    if listener is not None:
                        listener.close()
                        listener = None
                    stop_event.wait(pause)
                    continue
                failures = 0
                if applied:
                    logger.info("Projection runner applied %d events; now at %d", applied, self.min_position())
                if listener is not None:
                    listener.wait(poll_interval, stop_event)
                elif wake_event is not None:
                    wake_event.wait(poll_interval)
                    wake_event.clear()
                else:
                    stop_event.wait(poll_interval)
        finally:
            if listener is not None:
                listener.close()
            logger.info("Projection runner stopped at position %d", self.min_position())

    # Observing.

    def min_position(self) -> int:
        return min((follower.position for follower in self._followers.values()), default=0)

    def status(self) -> list[dict[str, Any]]:
        """Return each view's name, position and lag (events recorded after its position)."""
        self._ensure_setup()
        head = self.app.recorder.max_notification_id() or 0
        positions = self._read_positions()
        return [
            {"name": name, "position": position, "lag": max(head - position, 0)}
            for name, position in positions.items()
        ]

    def wait(self, position: int, timeout: float = 5.0, names: Iterable[str] | None = None) -> None:
        """Block until the views (or those named) have applied ``position``; raise TimeoutError after ``timeout`` seconds.

        An API calls this with the position of the event it just saved, to read
        its own write from the views.
        """
        self._ensure_setup()
        selected = list(names) if names is not None else list(self._followers)
        unknown = sorted(set(selected) - set(self._followers))
        if unknown:
            msg = f"projection {unknown[0]!r} is not known; use one of {', '.join(sorted(self._followers))}"
            raise LookupError(msg)
        deadline = time.monotonic() + timeout
        while True:
            positions = self._read_positions()
            if all(positions[name] >= position for name in selected):
                return
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                lagging = {name: positions[name] for name in selected if positions[name] < position}
                msg = f"projections {lagging} did not reach position {position} within {timeout}s"
                raise TimeoutError(msg)
            # Another process may be the one applying events, so wake up now and
            # then to re-read the positions even without a local notification.
            with self._progress:
                self._progress.wait(min(remaining, 0.05))

    def close(self) -> None:
        if self._owns_db:
            self.db.close()


def _select(decoded: list[tuple[int, str, Any]], start: int, topics: frozenset[str]) -> EventPage:
    """Return the decoded events after ``start`` whose topic is in ``topics`` (every topic when empty)."""
    if decoded and decoded[0][0] <= start:
        decoded = [entry for entry in decoded if entry[0] > start]
    if not topics:
        return [(position, event) for position, _, event in decoded]
    return [(position, event) for position, topic, event in decoded if topic in topics]


class _Listener:
    """A LISTEN connection on the event store's PostgreSQL notification channel."""

    def __init__(self, connection: Any) -> None:
        self._connection = connection

    @classmethod
    def open(cls, app: Any) -> _Listener | None:
        import psycopg
        from psycopg import sql

        channel = getattr(app.recorder, "channel_name", None)
        if channel is None:
            return None
        env = app.factory.env
        connection = psycopg.connect(
            dbname=env.get("POSTGRES_DBNAME"), host=env.get("POSTGRES_HOST"),
            port=env.get("POSTGRES_PORT") or "5432", user=env.get("POSTGRES_USER"),
            password=env.get("POSTGRES_PASSWORD") or "", autocommit=True,
        )
        connection.execute(sql.SQL("LISTEN {}").format(sql.Identifier(channel)))
        return cls(connection)

    def wait(self, timeout: float, stop_event: threading.Event) -> None:
        """Return after a notification, after ``timeout`` seconds, or soon after ``stop_event`` is set."""
        # Wake up at least every 0.5 s, so that a stop request is seen quickly.
        deadline = time.monotonic() + timeout
        while not stop_event.is_set():
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                return
            try:
                for _ in self._connection.notifies(timeout=min(remaining, 0.5), stop_after=1):
                    return
            except Exception as error:
                # The runner polls until the next catch-up opens a new listener.
                logger.warning("LISTEN connection failed (%s); polling instead", error)
                self.close()
                stop_event.wait(max(deadline - time.monotonic(), 0))
                return

    def close(self) -> None:
        if not self._connection.closed:
            self._connection.close()


class BackgroundRunner:
    """A projection runner on a daemon thread, for the embedded single-process mode."""

    def __init__(self, runner: ProjectionRunner, poll_interval: float) -> None:
        self.runner = runner
        self._stop = threading.Event()
        self._wake = threading.Event()
        self.error: BaseException | None = None
        self._thread = threading.Thread(
            target=self._run, args=(poll_interval,), name="projection-runner", daemon=True
        )

    def _run(self, poll_interval: float) -> None:
        try:
            self.runner.run_forever(self._stop, poll_interval, wake_event=self._wake)
        except BaseException as error:
            # NOTE: an error that is not transient (a failing view) stops the
            # embedded runner. status() keeps showing its lag, and the error stays
            # here until the process restarts.
            self.error = error
            logger.exception("Projection runner failed and stopped")

    def start(self) -> BackgroundRunner:
        self._thread.start()
        return self

    def wake(self) -> None:
        """Ask the runner to look for new events now instead of at its next poll."""
        self._wake.set()

    def wait(self, position: int, timeout: float = 5.0, names: Iterable[str] | None = None) -> None:
        """Wake the runner and wait until the views have applied ``position``."""
        self.wake()
        self.runner.wait(position, timeout, names)

    def join(self, timeout: float | None = None) -> bool:
        """Wait for the runner thread to end; return whether it has ended."""
        self._thread.join(timeout)
        return not self._thread.is_alive()

    def stop(self, timeout: float = 10.0) -> None:
        self._stop.set()
        self._wake.set()
        self._thread.join(timeout)
        self.runner.close()


def start_in_background(
    app: Any, views: Iterable[View] | None = None, *, db: Database | None = None, poll_interval: float = 0.5,
    create_tables: bool = True,
) -> BackgroundRunner:
    """Set up the views (every registered view by default) and follow the stream on a thread.

    Returns a handle with ``wake()``, ``wait(position)`` and ``stop()``.
    """
    if views is None:
        from projections.registry import all_views

        views = all_views()
    runner = ProjectionRunner(app, views, db, create_tables=create_tables)
    runner.setup()
    return BackgroundRunner(runner, poll_interval).start()
