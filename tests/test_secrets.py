"""Encryption of secrets at rest with the library's AES cipher."""

from __future__ import annotations

import stat

import pytest

from hub.secrets import KEY_FILE_NAME, SecretBox, generate_key, load_secret_box
from hub.settings import ConfigurationError, load_settings


def test_round_trip_with_configured_key():
    box = load_secret_box(load_settings({"HUB_CIPHER_KEY": generate_key()}))

    ciphertext = box.encrypt("api-token-123")

    assert "api-token-123" not in ciphertext
    assert box.decrypt(ciphertext) == "api-token-123"


def test_embedded_key_file_owner_only(tmp_path):
    settings = load_settings({"HUB_DATABASE_URL": f"sqlite:///{tmp_path}/hub.sqlite3"})

    first = load_secret_box(settings)
    ciphertext = first.encrypt("whsec_x")
    second = load_secret_box(settings)

    assert second.decrypt(ciphertext) == "whsec_x"
    mode = (tmp_path / KEY_FILE_NAME).stat().st_mode
    assert stat.S_IMODE(mode) == 0o600


def test_postgresql_without_key_names_the_setting():
    settings = load_settings({"HUB_DATABASE_URL": "postgresql://hub@db.internal/hub"})

    with pytest.raises(ConfigurationError, match="HUB_CIPHER_KEY is not set; it is required to store secrets with this store"):
        load_secret_box(settings)


def test_invalid_key_is_rejected_without_echo():
    with pytest.raises(ConfigurationError) as raised:
        SecretBox("short-key")

    assert "short-key" not in str(raised.value)
    assert str(raised.value).startswith("HUB_CIPHER_KEY is invalid")


def test_repr_hides_key():
    key = generate_key()

    assert key not in repr(SecretBox(key))


def test_cipher_key_leaves_events_plain(monkeypatch):
    from hub.application import create_application
    from hub.domain import Context, Ticket

    monkeypatch.setenv("HUB_CIPHER_KEY", generate_key())
    app = create_application(load_settings({"HUB_DATABASE_URL": "sqlite:///:memory:"}))

    ticket = app.open_ticket(Context(), subject="Readable for auditors", channel="web").aggregate
    notification = app.recorder.select_notifications(start=1, limit=1)[0]

    assert b"Readable for auditors" in notification.state
    assert app.get(Ticket, ticket.id).subject == "Readable for auditors"
    app.close()
