"""Encryption of secrets at rest: connector credentials and webhook signing secrets.

Secrets are encrypted field by field with the ``eventsourcing`` library's AES-GCM
cipher before they go into an event. The event store therefore never stores them in
clear text, and the rest of each event stays readable for audits and analysts.

The key comes from ``HUB_CIPHER_KEY``: base64 of 16, 24 or 32 bytes, as ``hub keys
generate`` prints. In the embedded mode (a SQLite file store) without that
setting, a key file is created once beside the database with owner-only
permissions, so that a fresh machine works without configuration. PostgreSQL
deployments must set the key, because their processes run on several machines.
"""

from __future__ import annotations

import base64
import binascii
import logging
import os
from pathlib import Path

from eventsourcing.cryptography import AESCipher
from eventsourcing.utils import Environment

from hub.settings import ConfigurationError, Settings

logger = logging.getLogger(__name__)

KEY_FILE_NAME = "hub-cipher.key"
KEY_BYTES = 32
# AES takes keys of these lengths.
ALLOWED_KEY_BYTES = (16, 24, 32)


class SecretBox:
    """Encrypts and decrypts short secrets as base64 text that fits in an event."""

    def __init__(self, key: str) -> None:
        check_key(key)
        try:
            self._cipher = AESCipher(Environment(env={"CIPHER_KEY": key}))
        except (ValueError, TypeError) as error:
            msg = f"HUB_CIPHER_KEY is invalid ({type(error).__name__}); generate one with 'hub keys generate'"
            raise ConfigurationError(msg) from None

    def encrypt(self, plaintext: str) -> str:
        return base64.b64encode(self._cipher.encrypt(plaintext.encode("utf-8"))).decode("ascii")

    def decrypt(self, ciphertext: str) -> str:
        return self._cipher.decrypt(base64.b64decode(ciphertext)).decode("utf-8")

    def __repr__(self) -> str:
        return "SecretBox(<key hidden>)"


def check_key(key: str) -> None:
    """Raise ConfigurationError unless ``key`` is base64 of 16, 24 or 32 bytes; the message never shows the key."""
    try:
        # Decoded as the library's AESCipher decodes it, so every key it takes passes.
        length: int | None = len(base64.b64decode(key.encode("utf-8")))
    except (binascii.Error, ValueError):
        length = None
    if length in ALLOWED_KEY_BYTES:
        return
    problem = "is not valid base64" if length is None else f"decodes to {length} bytes"
    msg = (
        f"HUB_CIPHER_KEY is invalid: it {problem}, and AES needs base64 of 16, 24 or 32 bytes; "
        "generate one with 'hub keys generate'"
    )
    raise ConfigurationError(msg)


def generate_key() -> str:
    return AESCipher.create_key(num_bytes=KEY_BYTES)


def load_secret_box(settings: Settings) -> SecretBox:
    """Return the cipher for secrets, from HUB_CIPHER_KEY or the embedded key file."""
    if settings.cipher_key:
        return SecretBox(settings.cipher_key)

    if settings.store != "sqlite" or not settings.sqlite_path or settings.sqlite_path.startswith("file:"):
        msg = (
            "HUB_CIPHER_KEY is not set; it is required to store secrets with this store. "
            "Generate a key with 'hub keys generate' and set HUB_CIPHER_KEY in every process"
        )
        raise ConfigurationError(msg)

    key_path = Path(settings.sqlite_path).parent / KEY_FILE_NAME
    if not key_path.exists():
        key_path.parent.mkdir(parents=True, exist_ok=True)
        # Create the file with owner-only permissions from the start, so the key is never world-readable.
        descriptor = os.open(key_path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(descriptor, "w") as key_file:
            key_file.write(generate_key())
        logger.info("Created the embedded secret key file %s", key_path)
    return SecretBox(key_path.read_text().strip())
