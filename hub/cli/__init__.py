"""The ``hub`` command line.

Each command lives in a module that defines ``register(subparsers)``; the module
names are listed in ``COMMAND_MODULES``. A command's handler receives the parsed
arguments and returns an exit code. Bad input exits with 2 and a one-line message
on standard error.
"""

from __future__ import annotations

import argparse
import importlib
import logging
import os
import sys
from collections.abc import Sequence

from eventsourcing.persistence import PersistenceError

from hub.cli.common import UsageError
from hub.domain.errors import DomainError
from hub.settings import DEFAULT_DATABASE_URL, ConfigurationError, mask_url

COMMAND_MODULES = (
    "hub.cli.importer",
    "hub.cli.replay",
    "hub.cli.run",
    "hub.cli.config",
    "hub.cli.db",
    "hub.cli.projections",
    "hub.cli.sla",
    "hub.cli.serve",
    "hub.cli.tokens",
    "hub.cli.connections",
    "hub.cli.webhooks",
)


class HubArgumentParser(argparse.ArgumentParser):
    """An argument parser whose errors are one line, exit code 2."""

    def error(self, message: str) -> None:  # type: ignore[override]
        self.exit(2, f"{self.prog}: error: {message}\n")


def build_parser() -> argparse.ArgumentParser:
    parser = HubArgumentParser(
        prog="hub",
        description="Event-sourced service hub: record, replay and report on client-service interactions.",
    )
    parser.add_argument(
        "--log-level", default="INFO",
        choices=("DEBUG", "INFO", "WARNING", "ERROR"), help="logging level (default: INFO)",
    )
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=HubArgumentParser)
    subparsers.required = True
    for module_name in COMMAND_MODULES:
        importlib.import_module(module_name).register(subparsers)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    logging.basicConfig(
        level=args.log_level, stream=sys.stderr,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    try:
        return int(args.handler(args) or 0)
    except (UsageError, ConfigurationError, DomainError) as error:
        print(f"hub {args.command}: error: {error}", file=sys.stderr)
        return 2
    except PersistenceError as error:
        # The store is configured but cannot be used (down, unreachable, locked).
        logging.getLogger(__name__).debug("Store error", exc_info=True)
        url = mask_url(os.environ.get("HUB_DATABASE_URL") or DEFAULT_DATABASE_URL)
        reason = " ".join(str(error).split()) or type(error).__name__
        print(
            f"hub {args.command}: error: the store at {url} cannot be used: {reason}; "
            "check that the database is running and that HUB_DATABASE_URL is right",
            file=sys.stderr,
        )
        return 1
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    sys.exit(main())
