"""Settings read from the environment, checked once at start.

``HUB_DATABASE_URL`` selects the event store and maps onto the persistence
settings of the ``eventsourcing`` library:

- ``sqlite:///var/hub.sqlite3`` (the default): a file relative to the working
  directory, created on first use. ``sqlite:////srv/hub.sqlite3`` is absolute.
  ``sqlite:///:memory:`` is a private in-memory store shared by this process's
  threads.
- ``postgresql://user[:password]@host[:port]/dbname``: PostgreSQL.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import unquote, urlsplit

DEFAULT_DATABASE_URL = "sqlite:///var/hub.sqlite3"

ACCEPTED_DATABASE_FORMS = (
    "sqlite:///RELATIVE/PATH, sqlite:////ABSOLUTE/PATH, sqlite:///:memory: "
    "or postgresql://user[:password]@host[:port]/dbname"
)

TRUE_WORDS = ("1", "true", "yes", "on", "y")

# HUB_CREATE_TABLE is also read by the eventsourcing library (as CREATE_TABLE of
# the application named "hub"), which accepts exactly these words (utils.strtobool, 9.5).
CREATE_TABLE_SETTING = "HUB_CREATE_TABLE"
LIBRARY_TRUE_WORDS = ("y", "yes", "t", "true", "on", "1")
LIBRARY_FALSE_WORDS = ("n", "no", "f", "false", "off", "0")


class ConfigurationError(Exception):
    """A setting has a value the hub cannot use; the message names the setting."""


@dataclass(frozen=True)
class Settings:
    """The effective settings of one process."""

    database_url: str
    store: str
    persistence_env: dict[str, str]
    sqlite_path: str | None = None
    postgres: dict[str, str] = field(default_factory=dict)
    webhooks_allow_private: bool = False
    connectors_allow_private: bool = False
    cipher_key: str | None = None
    create_tables: bool = True
    """Whether this process creates missing tables at start; ``hub db init`` always does."""

    def masked_database_url(self) -> str:
        return mask_url(self.database_url)


def mask_url(url: str) -> str:
    """Replace the password in a URL with ``***`` so that it can be printed or logged."""
    parts = urlsplit(url)
    if parts.password is None:
        return url
    netloc = parts.netloc.replace(f":{parts.password}@", ":***@", 1)
    return parts._replace(netloc=netloc).geturl()


def parse_database_url(url: str) -> tuple[str, dict[str, str], str | None, dict[str, str]]:
    """Map a database URL onto the library's persistence settings.

    Returns the store kind, the persistence environment, the SQLite path (or None)
    and the PostgreSQL connection parts (empty for SQLite).
    """
    invalid = (
        f"HUB_DATABASE_URL {mask_url(url)!r} is invalid; accepted forms: {ACCEPTED_DATABASE_FORMS}"
    )
    if url.startswith("sqlite:///"):
        path = url[len("sqlite:///"):]
        if not path:
            raise ConfigurationError(invalid)
        if path == ":memory:":
            # A plain ":memory:" database is private to each connection, and the
            # library's pool opens several, so name a shared in-memory database.
            dbname = f"file:hub-{uuid.uuid4().hex}?mode=memory&cache=shared"
        elif path.startswith("file:"):
            dbname = path
        else:
            dbname = path
        env = {"PERSISTENCE_MODULE": "eventsourcing.sqlite", "SQLITE_DBNAME": dbname}
        return "sqlite", env, dbname, {}

    if url.startswith(("postgresql://", "postgres://")):
        parts = urlsplit(url)
        dbname = parts.path.lstrip("/")
        try:
            port = parts.port
        except ValueError:
            raise ConfigurationError(invalid) from None
        if not parts.hostname or not dbname or not parts.username or "/" in dbname:
            raise ConfigurationError(invalid)
        postgres = {
            "POSTGRES_DBNAME": unquote(dbname),
            "POSTGRES_HOST": parts.hostname,
            "POSTGRES_PORT": str(port or 5432),
            "POSTGRES_USER": unquote(parts.username),
            "POSTGRES_PASSWORD": unquote(parts.password or ""),
        }
        env = {"PERSISTENCE_MODULE": "eventsourcing.postgres", **postgres}
        return "postgresql", env, None, postgres

    raise ConfigurationError(invalid)


# Numeric settings passed on to the event store library without their HUB_ prefix.
NUMERIC_LIBRARY_SETTINGS = (
    "HUB_POSTGRES_POOL_SIZE",
    "HUB_POSTGRES_MAX_OVERFLOW",
    "HUB_POSTGRES_CONNECT_TIMEOUT",
    "HUB_SQLITE_LOCK_TIMEOUT",
)


def read_flag(environ: Mapping[str, str], name: str) -> bool:
    value = environ.get(name, "").strip().lower()
    if value in ("", "0", "false", "no", "off", "n"):
        return False
    if value in TRUE_WORDS:
        return True
    msg = f"{name} {value!r} is invalid; use 1 or 0"
    raise ConfigurationError(msg)


def read_create_table(environ: Mapping[str, str]) -> bool:
    """Read HUB_CREATE_TABLE as the event store library reads it: yes when unset or empty."""
    value = environ.get(CREATE_TABLE_SETTING, "")
    if value == "" or value.lower() in LIBRARY_TRUE_WORDS:
        return True
    if value.lower() in LIBRARY_FALSE_WORDS:
        return False
    msg = (
        f"{CREATE_TABLE_SETTING} {value!r} is invalid; use n to leave table creation to 'hub db init', "
        "or y (the default) to create missing tables at start"
    )
    raise ConfigurationError(msg)


def load_settings(environ: Mapping[str, str] | None = None) -> Settings:
    """Read and check the settings; raise ConfigurationError naming the bad one."""
    environ = os.environ if environ is None else environ
    url = environ.get("HUB_DATABASE_URL", "").strip() or DEFAULT_DATABASE_URL
    store, env, sqlite_path, postgres = parse_database_url(url)

    for name in NUMERIC_LIBRARY_SETTINGS:
        value = environ.get(name)
        if value is None:
            continue
        if not (value.isascii() and value.isdigit()):
            msg = f"{name} {value!r} is invalid; use a whole number"
            raise ConfigurationError(msg)
        env[name.removeprefix("HUB_")] = value

    cipher_key = environ.get("HUB_CIPHER_KEY") or None
    return Settings(
        database_url=url,
        store=store,
        persistence_env=env,
        sqlite_path=sqlite_path,
        postgres=postgres,
        webhooks_allow_private=read_flag(environ, "HUB_WEBHOOKS_ALLOW_PRIVATE"),
        connectors_allow_private=read_flag(environ, "HUB_CONNECTORS_ALLOW_PRIVATE"),
        cipher_key=cipher_key,
        create_tables=read_create_table(environ),
    )


def ensure_sqlite_folder(settings: Settings) -> None:
    """Create the folder of the default SQLite store, so that the first start works.

    A store named in HUB_DATABASE_URL must be in an existing folder: a typo in
    the path would otherwise start a new, empty store without a word.
    """
    path = settings.sqlite_path
    if settings.store != "sqlite" or path is None or path.startswith("file:"):
        return
    folder = Path(path).parent
    if settings.database_url == DEFAULT_DATABASE_URL:
        folder.mkdir(parents=True, exist_ok=True)
    elif not folder.is_dir():
        msg = (
            f"HUB_DATABASE_URL {settings.database_url!r} names a file in the folder {str(folder)!r}, "
            "which does not exist; create the folder or correct the path"
        )
        raise ConfigurationError(msg)
