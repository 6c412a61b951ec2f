"""``hub tokens``: the token is printed once, alone on the last line, and works over HTTP."""

from __future__ import annotations

import pytest

from hub.cli import main
from tests.api.conftest import bearer, build_app, hub_of


@pytest.fixture
def store_env(monkeypatch, database_url):
    monkeypatch.setenv("HUB_DATABASE_URL", database_url)
    return database_url


def create_token(capsys, *arguments):
    code = main(["tokens", "create", *arguments])
    return code, capsys.readouterr().out.splitlines()


def test_created_token_is_last_line_and_authenticates(store_env, capsys):
    code, lines = create_token(capsys, "--role", "auditor", "--name", "audit-2024")
    app = build_app(store_env)
    try:
        response = app.test_client().get("/api/v1/events", headers=bearer(lines[-1]))
    finally:
        hub_of(app).close()

    assert code == 0
    assert lines[-1].startswith("hub_")
    assert " " not in lines[-1]
    assert response.status_code == 200


def test_token_is_stored_hashed(store_env, capsys):
    _, lines = create_token(capsys, "--role", "agent")
    app = build_app(store_env)
    try:
        rows = hub_of(app).tables.fetch("SELECT * FROM {schema}hub_api_tokens")
    finally:
        hub_of(app).close()

    assert len(rows) == 1
    assert lines[-1] not in {str(value) for value in rows[0].values()}
    assert rows[0]["name"].startswith("agent-")


def test_unknown_role_exits_2(store_env, capsys):
    with pytest.raises(SystemExit) as exit_info:
        main(["tokens", "create", "--role", "root"])

    assert exit_info.value.code == 2


def test_list_and_revoke(store_env, capsys):
    create_token(capsys, "--role", "analyst", "--name", "bi")
    main(["tokens", "list", "--format", "json"])
    import json

    listed = json.loads(capsys.readouterr().out)
    revoked = main(["tokens", "revoke", listed[0]["token_id"]])
    revoked_again = main(["tokens", "revoke", listed[0]["token_id"]])

    assert [(row["name"], row["role"], row["revoked_at"]) for row in listed] == [("bi", "analyst", None)]
    assert revoked == 0
    assert revoked_again == 2


def test_revoke_names_the_cache_delay(store_env, capsys):
    create_token(capsys, "--role", "analyst", "--name", "bi")
    main(["tokens", "list", "--format", "json"])
    import json

    token_id = json.loads(capsys.readouterr().out)[0]["token_id"]
    code = main(["tokens", "revoke", token_id])

    assert code == 0
    assert capsys.readouterr().out.splitlines() == [
        f"Revoked token {token_id}.",
        "Running server processes may still accept it for up to 10 seconds, "
        "until their cache of verified tokens expires.",
    ]
