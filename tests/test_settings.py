"""Store selection through HUB_DATABASE_URL and the other settings."""

from __future__ import annotations

import pytest

from hub.settings import ConfigurationError, load_settings, mask_url

ACCEPTED = (
    "accepted forms: sqlite:///RELATIVE/PATH, sqlite:////ABSOLUTE/PATH, sqlite:///:memory: "
    "or postgresql://user[:password]@host[:port]/dbname"
)


def test_default_is_relative_sqlite_file():
    settings = load_settings({})

    assert settings.store == "sqlite"
    assert settings.persistence_env == {"PERSISTENCE_MODULE": "eventsourcing.sqlite", "SQLITE_DBNAME": "var/hub.sqlite3"}


def test_absolute_sqlite_path_keeps_leading_slash():
    settings = load_settings({"HUB_DATABASE_URL": "sqlite:////srv/hub/events.db"})

    assert settings.persistence_env["SQLITE_DBNAME"] == "/srv/hub/events.db"


def test_memory_sqlite_is_shared_between_connections():
    settings = load_settings({"HUB_DATABASE_URL": "sqlite:///:memory:"})

    assert settings.persistence_env["SQLITE_DBNAME"].startswith("file:hub-")
    assert settings.persistence_env["SQLITE_DBNAME"].endswith("?mode=memory&cache=shared")


def test_postgresql_url_maps_onto_library_settings():
    settings = load_settings({"HUB_DATABASE_URL": "postgresql://hub:s%40cret@db.internal:6432/events"})

    assert settings.store == "postgresql"
    assert settings.persistence_env == {
        "PERSISTENCE_MODULE": "eventsourcing.postgres",
        "POSTGRES_DBNAME": "events",
        "POSTGRES_HOST": "db.internal",
        "POSTGRES_PORT": "6432",
        "POSTGRES_USER": "hub",
        "POSTGRES_PASSWORD": "s@cret",
    }


@pytest.mark.parametrize(
    "url",
    ["mysql://root@localhost/hub", "sqlite://relative.db", "postgresql://localhost/hub", "postgresql://u@h:99999/db", "postgresql://u@h/"],
)
def test_bad_database_url_names_setting_and_forms(url):
    with pytest.raises(ConfigurationError) as raised:
        load_settings({"HUB_DATABASE_URL": url})

    assert str(raised.value) == f"HUB_DATABASE_URL {url!r} is invalid; {ACCEPTED}"


def test_bad_database_url_hides_password():
    with pytest.raises(ConfigurationError) as raised:
        load_settings({"HUB_DATABASE_URL": "postgresql://hub:topsecret@h:port/db"})

    assert "topsecret" not in str(raised.value)
    assert "hub:***@h:port" in str(raised.value)


def test_mask_url_hides_only_password():
    assert mask_url("postgresql://hub:pw@h:5432/db") == "postgresql://hub:***@h:5432/db"
    assert mask_url("sqlite:///var/hub.sqlite3") == "sqlite:///var/hub.sqlite3"


def test_flag_with_unknown_word_is_rejected():
    with pytest.raises(ConfigurationError, match="HUB_WEBHOOKS_ALLOW_PRIVATE 'maybe' is invalid; use 1 or 0"):
        load_settings({"HUB_WEBHOOKS_ALLOW_PRIVATE": "maybe"})


def test_pool_size_must_be_a_number():
    with pytest.raises(ConfigurationError, match="HUB_POSTGRES_POOL_SIZE 'ten' is invalid; use a whole number"):
        load_settings({"HUB_POSTGRES_POOL_SIZE": "ten"})


def test_named_sqlite_file_needs_existing_folder(tmp_path):
    from hub.settings import ensure_sqlite_folder

    settings = load_settings({"HUB_DATABASE_URL": f"sqlite:///{tmp_path}/missing/hub.sqlite3"})

    with pytest.raises(ConfigurationError, match=f"names a file in the folder '{tmp_path}/missing', which does not exist; create the folder or correct the path"):
        ensure_sqlite_folder(settings)

    assert not (tmp_path / "missing").exists()


def test_default_sqlite_folder_is_created(tmp_path, monkeypatch):
    from hub.settings import ensure_sqlite_folder

    monkeypatch.chdir(tmp_path)

    ensure_sqlite_folder(load_settings({}))

    assert (tmp_path / "var").is_dir()


def test_non_ascii_digits_are_not_numbers():
    with pytest.raises(ConfigurationError, match="HUB_POSTGRES_POOL_SIZE '²' is invalid; use a whole number"):
        load_settings({"HUB_POSTGRES_POOL_SIZE": "²"})
