"""``hub config check``: print the effective settings, secrets masked, or fail on a bad one."""

from __future__ import annotations

import argparse
import os
from typing import Any

from hub.settings import load_settings

# Settings the hub reads, with what they are for; values of the secret ones are masked.
KNOWN_SETTINGS = {
    "HUB_DATABASE_URL": "event store and views",
    "HUB_CIPHER_KEY": "encryption key for stored secrets",
    "HUB_WEBHOOKS_ALLOW_PRIVATE": "allow webhook receivers on private addresses",
    "HUB_CONNECTORS_ALLOW_PRIVATE": "allow connector base URLs on http:// or private addresses",
    "HUB_POSTGRES_POOL_SIZE": "PostgreSQL connections kept per process",
    "HUB_POSTGRES_MAX_OVERFLOW": "extra PostgreSQL connections per process under load",
    "HUB_SQLITE_LOCK_TIMEOUT": "seconds a SQLite writer waits for the lock",
}
SECRET_SETTINGS = ("HUB_CIPHER_KEY",)


def register(subparsers: Any) -> None:
    parser = subparsers.add_parser("config", help="inspect the settings", description="Inspect the settings read from the environment.")
    actions = parser.add_subparsers(dest="action", metavar="ACTION")
    actions.required = True
    check = actions.add_parser(
        "check", help="print the effective settings with secrets masked",
        description="Check every HUB_* setting and print the effective values, secrets masked. "
        "Exits with 2 and names the setting when one is invalid.",
    )
    check.set_defaults(handler=run_check)


def run_check(args: argparse.Namespace) -> int:
    settings = load_settings()
    rows = [
        ("HUB_DATABASE_URL", settings.masked_database_url()),
        ("store", settings.store),
        ("HUB_CIPHER_KEY", "set (hidden)" if settings.cipher_key else "not set"),
        ("HUB_WEBHOOKS_ALLOW_PRIVATE", "1" if settings.webhooks_allow_private else "0"),
        ("HUB_CONNECTORS_ALLOW_PRIVATE", "1" if settings.connectors_allow_private else "0"),
    ]
    for name in ("HUB_POSTGRES_POOL_SIZE", "HUB_POSTGRES_MAX_OVERFLOW", "HUB_SQLITE_LOCK_TIMEOUT"):
        if name in os.environ:
            rows.append((name, os.environ[name]))
    unknown = sorted(name for name in os.environ if name.startswith("HUB_") and name not in KNOWN_SETTINGS)
    width = max(len(name) for name, _ in rows)
    for name, value in rows:
        print(f"{name.ljust(width)}  {value}")
    for name in unknown:
        # Library settings such as HUB_POSTGRES_SCHEMA are passed through; say so, without the value.
        print(f"{name.ljust(width)}  set (passed to the event store library)")
    print("Settings are valid.")
    return 0
