"""``hub run``: the main job on the embedded store."""

from __future__ import annotations

import argparse
import logging
from typing import Any

from hub.application import create_application
from hub.settings import load_settings

logger = logging.getLogger(__name__)


def register(subparsers: Any) -> None:
    parser = subparsers.add_parser(
        "run", help="prepare the store and serve the hub (the main job)",
        description="Open the configured store (SQLite by default), load the bundled "
        "ServiceNow incident log when the store is empty, and serve the hub.",
    )
    parser.add_argument("--host", default="127.0.0.1", help="address to listen on (default: 127.0.0.1)")
    parser.add_argument("--port", type=int, default=8000, help="port to listen on (default: 8000)")
    parser.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    settings = load_settings()
    app = create_application(settings)
    try:
        events = app.max_position()
        print(f"Event store: {settings.masked_database_url()} ({events} events)")
    finally:
        app.close()
    return 0
