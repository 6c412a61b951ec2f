"""Helpers shared by test modules: the PostgreSQL test database and the store kinds.

Test modules import these from here rather than from ``conftest``, because
several folders have a ``conftest.py`` and the name would be ambiguous.
"""

from __future__ import annotations

import socket

import pytest

POSTGRES_URL = "postgresql://postgres@127.0.0.1:5432/test"


def postgres_answers() -> bool:
    try:
        with socket.create_connection(("127.0.0.1", 5432), timeout=1):
            return True
    except OSError:
        return False


requires_postgres = pytest.mark.skipif(
    not postgres_answers(),
    reason="PostgreSQL does not answer on 127.0.0.1:5432 (.ci/run starts it; locally run "
    "'pg_ctlcluster --skip-systemctl-redirect 15 main start')",
)


def store_url(kind: str, tmp_path) -> str:
    if kind == "sqlite-file":
        return f"sqlite:///{tmp_path}/hub.sqlite3"
    if kind == "sqlite-memory":
        return "sqlite:///:memory:"
    return POSTGRES_URL


STORE_KINDS = [
    "sqlite-file",
    "sqlite-memory",
    pytest.param("postgresql", marks=[requires_postgres, pytest.mark.postgres]),
]
