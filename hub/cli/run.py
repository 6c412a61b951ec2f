"""``hub run``: the main job on the embedded store.

It imports the bundled ServiceNow incident log into an empty store, or finishes an
interrupted import of it. Then it brings the views up to date, issues a sign-in
token and serves the API and the dashboard. The projections, webhook deliveries
and scheduled jobs run in the same process.
"""

from __future__ import annotations

import argparse
import logging
import sys
from datetime import timezone
from typing import Any

from hub.application import HubApplication, create_application
from hub.domain import external_uuid
from hub.settings import load_settings

logger = logging.getLogger(__name__)

# The first incident of the bundled log. When its ticket exists, the store contains
# that log or part of it, so running the idempotent import again completes it.
FIRST_BUNDLED_INCIDENT = "INC0000045"

# The name of the admin token each run prints; a new run revokes the previous one.
SIGN_IN_TOKEN_NAME = "hub-run"


def register(subparsers: Any) -> None:
    parser = subparsers.add_parser(
        "run", help="load the bundled data if the store is empty, then serve the hub (the main job)",
        description="Open the configured store (SQLite at var/hub.sqlite3 by default), import the "
        "bundled ServiceNow incident log when the store is empty or holds an interrupted import of it, "
        "bring the views up to date, print a sign-in token and serve the API and the dashboard.",
    )
    parser.add_argument("--host", default="127.0.0.1", help="address to listen on (default: 127.0.0.1)")
    parser.add_argument("--port", type=int, default=8000, help="port to listen on (default: 8000)")
    parser.add_argument(
        "--no-serve", action="store_true",
        help="prepare the store, the views and the token, then exit instead of serving",
    )
    parser.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    settings = load_settings()
    app = create_application(settings)
    try:
        print(f"Event store: {settings.masked_database_url()}")
        load_bundled_log(app)
        bring_views_up_to_date(app)
        token = issue_sign_in_token(app)
    finally:
        app.close()

    address = f"http://{args.host}:{args.port}/"
    print()
    print(f"Dashboard and API: {address}  (API docs: {address}docs)")
    print("Sign in with this admin token; it is shown only now and replaces the one of the last run "
          "('hub tokens create' makes lasting ones):")
    print(token)
    print()
    print("Next: 'hub kpi --by priority', 'hub sla', 'hub replay TICKET_ID', 'hub --help'.")
    sys.stdout.flush()
    if args.no_serve:
        return 0

    from hub.cli.serve import serve

    serve(args.host, args.port, run_scheduler=True)
    return 0


def load_bundled_log(app: HubApplication) -> None:
    from connectors.servicenow_import import BUNDLED_EXPORT, import_incidents, print_summary

    first_ticket = external_uuid("ticket", "servicenow", FIRST_BUNDLED_INCIDENT)
    if app.max_position() and first_ticket not in app.repository:
        print("The store already holds other data; the bundled ServiceNow log is not imported.")
        return

    print(f"Importing the bundled ServiceNow incident log ({BUNDLED_EXPORT.name}) ...")
    progress = None
    if sys.stderr.isatty():
        from hub.cli.importer import ProgressBar

        progress = ProgressBar(sys.stderr)
    summary = import_incidents(app, BUNDLED_EXPORT, zone=timezone.utc, progress=progress)
    print_summary(summary, sys.stdout)


def bring_views_up_to_date(app: HubApplication) -> None:
    from projections.registry import all_views
    from projections.runner import ProjectionRunner

    runner = ProjectionRunner(app, all_views())
    try:
        runner.setup()
        lag = max((row["lag"] for row in runner.status()), default=0)
        if lag:
            print(f"Bringing the views up to date ({lag} events to apply) ...")
        runner.catch_up()
    finally:
        runner.close()


def issue_sign_in_token(app: HubApplication) -> str:
    """Create this run's admin token and revoke the ones earlier runs printed."""
    from hub.web.storage import SqlTables, TokenStore

    tables = SqlTables(app)
    tables.create_tables()
    store = TokenStore(tables)
    for token in store.list():
        if token.name == SIGN_IN_TOKEN_NAME and token.revoked_at is None:
            store.revoke(token.token_id)
            logger.info("Revoked the sign-in token %s of an earlier run", token.token_id)
    _, secret = store.create("admin", SIGN_IN_TOKEN_NAME)
    return secret
