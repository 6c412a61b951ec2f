"""``hub serve``: the HTTP API in one process, with the projections on a background thread."""

from __future__ import annotations

import argparse
import logging
from typing import Any

from gunicorn.app.base import BaseApplication

from hub.cli.common import positive_int_argument
from hub.settings import load_settings

logger = logging.getLogger(__name__)


class EmbeddedServer(BaseApplication):  # type: ignore[misc]
    """gunicorn with one threaded worker that builds the app after the fork.

    One worker keeps a single projection runner; the threads serve requests
    concurrently and share the worker's connection pool.
    """

    def __init__(self, options: dict[str, Any], *, run_scheduler: bool = True) -> None:
        self.options = options
        self.run_scheduler = run_scheduler
        super().__init__()

    def load_config(self) -> None:
        for name, value in self.options.items():
            self.cfg.set(name, value)

    def load(self) -> Any:
        from hub.web import create_app

        return create_app({"RUN_PROJECTIONS": True, "RUN_SCHEDULER": self.run_scheduler})


def close_worker_app(server: Any, worker: Any) -> None:
    """Stop the projection thread and close the store when the worker exits."""
    app = getattr(worker, "wsgi", None)
    hub = getattr(app, "extensions", {}).get("hub") if app is not None else None
    if hub is not None:
        hub.close()


def register(subparsers: Any) -> None:
    parser = subparsers.add_parser(
        "serve", help="serve the HTTP API with the projections in-process",
        description="Serve the HTTP API (OpenAPI document at /openapi.json, docs at /docs) and the "
        "dashboard in one gunicorn worker with several threads, with the projections, webhook "
        "deliveries and scheduled jobs on background threads.",
    )
    parser.add_argument("--host", default="127.0.0.1", help="address to listen on (default: 127.0.0.1)")
    parser.add_argument("--port", type=positive_int_argument, default=8000, help="port to listen on (default: 8000)")
    parser.add_argument("--threads", type=positive_int_argument, default=8, help="request threads (default: 8)")
    parser.add_argument(
        "--no-scheduler", action="store_true",
        help="do not run the scheduled jobs in this process (when another process runs them)",
    )
    parser.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    serve(args.host, args.port, threads=args.threads, run_scheduler=not args.no_scheduler)
    return 0


def serve(host: str, port: int, *, threads: int = 8, run_scheduler: bool = True) -> None:
    """Serve the hub in one process: API, dashboard, projections, webhook deliveries and, optionally, the scheduler."""
    # Check the settings here, so that a bad HUB_DATABASE_URL exits with a clear
    # message instead of a worker that fails to boot.
    settings = load_settings()
    logger.info("Serving the API on http://%s:%d (%s store)", host, port, settings.store)
    EmbeddedServer(
        {
            "bind": f"{host}:{port}",
            "workers": 1,
            "worker_class": "gthread",
            "threads": threads,
            "accesslog": "-",
            "worker_exit": close_worker_app,
        },
        run_scheduler=run_scheduler,
    ).run()
