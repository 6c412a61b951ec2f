"""``hub config check``: print the effective settings, secrets masked, or fail on a bad one."""

from __future__ import annotations

import argparse
import os
import sys
from typing import Any

from eventsourcing.utils import strtobool

from hub.secrets import SecretBox
from hub.settings import NUMERIC_LIBRARY_SETTINGS, ConfigurationError, Settings, load_settings, read_flag

# Settings the hub reads, with what they are for; values of the secret ones are masked.
KNOWN_SETTINGS = {
    "HUB_DATABASE_URL": "event store and views",
    "HUB_POSTGRES_SCHEMA": "PostgreSQL schema of every table (default: public)",
    "HUB_CREATE_TABLE": "whether processes create missing tables at start (default: y)",
    "HUB_CIPHER_KEY": "encryption key for stored secrets",
    "HUB_SECRET_KEY": "key that signs dashboard sessions",
    "HUB_SESSION_COOKIE_SECURE": "send the dashboard session cookie over HTTPS only",
    "HUB_RUN_PROJECTIONS": "apply the views on a thread of each web worker",
    "HUB_RUN_SCHEDULER": "run the scheduled jobs on a thread of each web worker",
    "HUB_WEBHOOKS_ALLOW_PRIVATE": "allow webhook receivers on private addresses",
    "HUB_WEBHOOKS_RETRY_SCHEDULE": "seconds between webhook delivery attempts",
    "HUB_WEBHOOKS_CONCURRENCY": "webhook attempts one worker sends at once",
    "HUB_WEBHOOKS_LEASE_SECONDS": "seconds before another worker takes over an unfinished webhook attempt",
    "HUB_CONNECTORS_ALLOW_PRIVATE": "allow connector base URLs on http:// or private addresses",
    "HUB_POSTGRES_POOL_SIZE": "PostgreSQL connections kept per process",
    "HUB_POSTGRES_MAX_OVERFLOW": "extra PostgreSQL connections per process under load",
    "HUB_POSTGRES_CONNECT_TIMEOUT": "seconds to wait for a PostgreSQL connection (default 30)",
    "HUB_SQLITE_LOCK_TIMEOUT": "seconds a SQLite writer waits for the lock",
    "HUB_POSTGRES_PRE_PING": "check each pooled PostgreSQL connection before use, such as after a failover (y or n)",
}
SECRET_SETTINGS = ("HUB_CIPHER_KEY", "HUB_SECRET_KEY")


def library_setting_names() -> frozenset[str]:
    """Return the settings the eventsourcing library reads, which it also reads with the HUB_ prefix."""
    from eventsourcing.application import Application
    from eventsourcing.persistence import InfrastructureFactory
    from eventsourcing.postgres import PostgresFactory
    from eventsourcing.sqlite import SQLiteFactory

    names = set()
    for owner in (Application, InfrastructureFactory, PostgresFactory, SQLiteFactory):
        for attribute in dir(owner):
            value = getattr(owner, attribute, None)
            if attribute.isupper() and isinstance(value, str) and value.isupper():
                names.add(value)
    return frozenset(names)


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
    ]
    if settings.store == "postgresql":
        rows.append(("HUB_POSTGRES_SCHEMA", os.environ.get("HUB_POSTGRES_SCHEMA") or "public"))
    rows.append((
        "HUB_CREATE_TABLE",
        "y (missing tables are created at start)" if settings.create_tables
        else "n (only 'hub db init' creates tables)",
    ))
    rows.append(("HUB_CIPHER_KEY", _check_cipher_key(settings)))
    rows.append(("HUB_SECRET_KEY", _check_secret_key()))
    rows.append(("HUB_WEBHOOKS_ALLOW_PRIVATE", "1" if settings.webhooks_allow_private else "0"))
    rows.append(("HUB_CONNECTORS_ALLOW_PRIVATE", "1" if settings.connectors_allow_private else "0"))
    for name in ("HUB_RUN_PROJECTIONS", "HUB_RUN_SCHEDULER"):
        if name in os.environ:
            rows.append((name, "1" if read_flag(os.environ, name) else "0"))
    rows.extend(_webhook_policy_rows())
    for name in NUMERIC_LIBRARY_SETTINGS:
        if name in os.environ:
            rows.append((name, os.environ[name]))
    if "HUB_SESSION_COOKIE_SECURE" in os.environ:
        rows.append(("HUB_SESSION_COOKIE_SECURE", "1" if read_flag(os.environ, "HUB_SESSION_COOKIE_SECURE") else "0"))
    if "HUB_POSTGRES_PRE_PING" in os.environ:
        rows.append(("HUB_POSTGRES_PRE_PING", _check_library_flag("HUB_POSTGRES_PRE_PING")))

    # The event store library reads its own settings with the HUB_ prefix too,
    # so those are passed on. Any other HUB_* name is read by nothing.
    library_names = library_setting_names()
    others = sorted(name for name in os.environ if name.startswith("HUB_") and name not in KNOWN_SETTINGS)
    library = [name for name in others if name.removeprefix("HUB_") in library_names]
    unknown = [name for name in others if name not in library]

    width = max(len(name) for name, _ in rows)
    for name, value in rows:
        print(f"{name.ljust(width)}  {value}")
    for name in library:
        print(f"{name.ljust(width)}  set (event store library setting {name.removeprefix('HUB_')})")
    for name in unknown:
        print(
            f"hub config: warning: {name} is not a setting of the hub or its event store library, "
            "so nothing reads it; check the spelling",
            file=sys.stderr,
        )
    print("Settings are valid.")
    return 0


def _check_library_flag(name: str) -> str:
    value = os.environ[name]
    try:
        return "y" if strtobool(value) else "n"
    except ValueError:
        msg = f"{name} {value!r} is invalid; use y or n"
        raise ConfigurationError(msg) from None


def _check_cipher_key(settings: Settings) -> str:
    if settings.cipher_key:
        SecretBox(settings.cipher_key)  # raises ConfigurationError unless it is base64 of 16, 24 or 32 bytes
        return "set (hidden)"
    if settings.store == "postgresql":
        # hub worker exits at once without it, and webhooks and connections cannot store secrets.
        msg = (
            "HUB_CIPHER_KEY is not set; a PostgreSQL deployment needs the same key in every process. "
            "Generate one with 'hub keys generate'"
        )
        raise ConfigurationError(msg)
    return "not set (the embedded store keeps a key file beside the database)"


def _check_secret_key() -> str:
    from hub.web.pages.session import MIN_SECRET_KEY_LENGTH, SECRET_KEY_VARIABLE

    value = os.environ.get(SECRET_KEY_VARIABLE, "")
    if not value:
        return "not set (each process signs dashboard sessions with a random key of its own)"
    if len(value) < MIN_SECRET_KEY_LENGTH:
        msg = (
            f"{SECRET_KEY_VARIABLE} is {len(value)} characters long; use at least {MIN_SECRET_KEY_LENGTH} "
            "random characters, for example the output of python -c 'import secrets; print(secrets.token_urlsafe(32))'"
        )
        raise ConfigurationError(msg)
    return "set (hidden)"


def _webhook_policy_rows() -> list[tuple[str, str]]:
    from webhooks.worker import policy_from_env

    policy = policy_from_env()
    return [
        ("HUB_WEBHOOKS_RETRY_SCHEDULE", ",".join(f"{step:g}" for step in policy.schedule)),
        ("HUB_WEBHOOKS_CONCURRENCY", str(policy.concurrency)),
        ("HUB_WEBHOOKS_LEASE_SECONDS", f"{policy.lease_seconds:g}"),
    ]
