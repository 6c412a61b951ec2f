"""``hub db init`` and ``hub db copy``: prepare a database and move a store to another one."""

from __future__ import annotations

import argparse
import logging
import time
from dataclasses import replace
from typing import Any

from eventsourcing.persistence import StoredEvent

from hub.application import create_application
from hub.cli.common import UsageError
from hub.schema import initialize_database
from hub.settings import load_settings, mask_url, parse_database_url

logger = logging.getLogger(__name__)

COPY_PAGE_SIZE = 1000


def register(subparsers: Any) -> None:
    parser = subparsers.add_parser("db", help="create tables, copy a store", description="Manage the database.")
    actions = parser.add_subparsers(dest="action", metavar="ACTION")
    actions.required = True

    init = actions.add_parser(
        "init", help="create every table and index (idempotent)",
        description="Create the event store, view, webhook, connector and token tables and indexes "
        "in HUB_DATABASE_URL. Safe to run again; run it once per deployment before starting web processes.",
    )
    init.set_defaults(handler=run_init)

    copy = actions.add_parser(
        "copy", help="copy every event to another store and rebuild its views",
        description="Copy the events of HUB_DATABASE_URL, in order, into the store at --to, "
        "then rebuild the views there. An interrupted copy resumes where it stopped.",
    )
    copy.add_argument("--to", required=True, metavar="URL", help="target store, such as postgresql://hub@db/hub")
    copy.set_defaults(handler=run_copy)


def run_init(args: argparse.Namespace) -> int:
    # This command creates the tables whatever HUB_CREATE_TABLE is set to.
    settings = replace(load_settings(), create_tables=True)
    app = create_application(settings)
    try:
        created = initialize_database(app)
    finally:
        app.close()
    print(f"Database ready at {settings.masked_database_url()}: {', '.join(created)}")
    return 0


def run_copy(args: argparse.Namespace) -> int:
    source_settings = load_settings()
    try:
        parse_database_url(args.to)
    except Exception as error:
        raise UsageError(str(error).replace("HUB_DATABASE_URL", "--to")) from None
    target_settings = replace(load_settings({"HUB_DATABASE_URL": args.to}), create_tables=True)
    if target_settings.database_url == source_settings.database_url:
        raise UsageError("--to names the same store as HUB_DATABASE_URL; choose another target")

    source = create_application(source_settings)
    target = create_application(target_settings)
    try:
        started = time.monotonic()
        copied, total = copy_events(source, target)
        print(f"Copied {copied} events ({total} in the target) to {mask_url(args.to)} in {time.monotonic() - started:.1f}s")
        created = initialize_database(target, rebuild_views=True)
        print(f"Views rebuilt in the target: {', '.join(created)}")
    finally:
        source.close()
        target.close()
    return 0


def copy_events(source: Any, target: Any, page_size: int = COPY_PAGE_SIZE) -> tuple[int, int]:
    """Append the source's events to the target in stream order, one transaction per page.

    The target must hold nothing or a prefix of the source, as an interrupted
    copy leaves it; the copy then continues after that prefix. Positions in the
    target are assigned by the target, so they match the source's only when the
    source has no gaps.
    """
    already = _count_events(target)
    start = _position_after(source, already)
    if already:
        logger.info("Target already contains %d events; resuming the copy after source position %d", already, start)
    copied = 0
    while True:
        notifications = source.recorder.select_notifications(start=start, limit=page_size, inclusive_of_start=False)
        if not notifications:
            break
        stored = [
            StoredEvent(
                originator_id=n.originator_id, originator_version=n.originator_version,
                topic=n.topic, state=n.state,
            )
            for n in notifications
        ]
        target.recorder.insert_events(stored)
        copied += len(stored)
        start = notifications[-1].id
        logger.info("Copied %d events up to source position %d", copied, start)
    return copied, already + copied


def _count_events(app: Any) -> int:
    count = 0
    start = 0
    while True:
        page = app.recorder.select_notifications(start=start, limit=10_000, inclusive_of_start=False)
        if not page:
            return count
        count += len(page)
        start = page[-1].id


def _position_after(app: Any, count: int) -> int:
    """Return the source position of the ``count``-th event (0 when count is 0)."""
    if count == 0:
        return 0
    start = 0
    remaining = count
    while True:
        page = app.recorder.select_notifications(start=start, limit=min(remaining, 10_000), inclusive_of_start=False)
        if not page:
            msg = f"the target holds {count} events but the source only {count - remaining}; it is not a copy of this store"
            raise UsageError(msg)
        remaining -= len(page)
        start = page[-1].id
        if remaining == 0:
            return start
