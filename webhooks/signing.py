"""Standard Webhooks signatures for outgoing messages.

A signature is ``v1,`` followed by the base64 HMAC-SHA256 of
``"{msg_id}.{timestamp}."`` plus the exact body bytes, keyed with the secret's
decoded bytes. Receivers check it with any Standard Webhooks library, such as
the ``standardwebhooks`` package on PyPI. See
https://github.com/standard-webhooks/standard-webhooks/blob/main/spec/standard-webhooks.md
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import secrets as _random
import uuid
from collections.abc import Sequence

SECRET_PREFIX = "whsec_"
MESSAGE_ID_PREFIX = "msg_"

# Standard Webhooks 1.0 requires symmetric secrets of at least 24 bytes and
# caps them at 512 bits (64 bytes).
MIN_SECRET_BYTES = 24
MAX_SECRET_BYTES = 64

# Receivers deduplicate on the message id, so this namespace and the name
# format in message_id_for must never change once messages have been sent.
_MESSAGE_ID_NAMESPACE = uuid.UUID("0b8f8a5e-3c1d-5d2a-9a4e-6f1c2b7d9e30")


def generate_secret(num_bytes: int = 32) -> str:
    """Generate a new endpoint secret: ``whsec_`` and base64 of random bytes."""
    if isinstance(num_bytes, bool) or not isinstance(num_bytes, int):
        msg = f"num_bytes must be an int, got {type(num_bytes).__name__}"
        raise TypeError(msg)
    if not MIN_SECRET_BYTES <= num_bytes <= MAX_SECRET_BYTES:
        msg = (
            f"num_bytes={num_bytes} is out of range; "
            f"use {MIN_SECRET_BYTES} to {MAX_SECRET_BYTES} bytes"
        )
        raise ValueError(msg)

    key = _random.token_bytes(num_bytes)
    return SECRET_PREFIX + base64.b64encode(key).decode("ascii")


def decode_secret(secret: str) -> bytes:
    """Decode a secret, with or without the ``whsec_`` prefix, into its key bytes.

    Raises ValueError when the secret is empty or not valid base64. The message
    never contains the secret.
    """
    encoded = secret.removeprefix(SECRET_PREFIX)
    # Some issuers drop the base64 padding, so restore it before decoding.
    padded = encoded + "=" * (-len(encoded) % 4)
    try:
        key = base64.b64decode(padded, validate=True)
    except binascii.Error:
        msg = "webhook secret is not valid base64; generate a new one with generate_secret()"
        raise ValueError(msg) from None
    if not key:
        msg = "webhook secret is empty; generate one with generate_secret()"
        raise ValueError(msg)
    return key


def sign(secret: str, msg_id: str, timestamp: int, body: bytes) -> str:
    """Sign one message and return its ``v1,<base64>`` signature."""
    _check_message_fields(msg_id, timestamp, body)
    signed_content = f"{msg_id}.{timestamp}.".encode() + body
    digest = hmac.new(decode_secret(secret), signed_content, hashlib.sha256).digest()
    return "v1," + base64.b64encode(digest).decode("ascii")


def signature_header(
    secrets: Sequence[str], msg_id: str, timestamp: int, body: bytes
) -> str:
    """Build the ``webhook-signature`` header value: one signature per secret.

    While a secret is being rotated, pass both the new and the old secret, so a
    receiver that has either one can verify the message.
    """
    if isinstance(secrets, str):
        # A bare string would be signed once per character.
        msg = "secrets must be a list of secrets, not a single string"
        raise TypeError(msg)
    if not secrets:
        msg = "secrets is empty; an endpoint needs at least one signing secret"
        raise ValueError(msg)
    return " ".join(sign(secret, msg_id, timestamp, body) for secret in secrets)


def new_message_id() -> str:
    """Return a random message id, such as ``msg_2p6k...`` (26 characters after the prefix)."""
    return MESSAGE_ID_PREFIX + _encode_id(_random.token_bytes(16))


def message_id_for(endpoint_id: str | uuid.UUID, event_position: int) -> str:
    """Return the message id for delivering one event to one endpoint.

    The id depends only on the endpoint id and the event's position in the
    global event sequence, so every retry and every recomputation of the same
    delivery sends the same ``webhook-id``, which receivers use to drop
    duplicates. A UUID endpoint id and its canonical string form (lowercase,
    with hyphens) give the same message id.
    """
    if isinstance(event_position, bool) or not isinstance(event_position, int):
        msg = f"event_position must be an int, got {type(event_position).__name__}"
        raise TypeError(msg)
    if event_position < 0:
        msg = f"event_position={event_position} is negative; positions start at 0"
        raise ValueError(msg)
    endpoint_key = str(endpoint_id)
    if not endpoint_key:
        msg = "endpoint_id is empty"
        raise ValueError(msg)

    name = f"{endpoint_key}:{event_position}"
    return MESSAGE_ID_PREFIX + _encode_id(uuid.uuid5(_MESSAGE_ID_NAMESPACE, name).bytes)


def _encode_id(raw: bytes) -> str:
    # Lowercase base32 without padding has only letters and digits 2-7, so an
    # id is safe in headers, URLs, file names and log lines.
    return base64.b32encode(raw).decode("ascii").rstrip("=").lower()


def _check_message_fields(msg_id: str, timestamp: int, body: bytes) -> None:
    if not msg_id:
        msg = "msg_id is empty; use new_message_id() or message_id_for()"
        raise ValueError(msg)
    if not msg_id.isascii() or not msg_id.isprintable() or " " in msg_id:
        # The id goes into an HTTP header as is.
        msg = f"msg_id {msg_id!r} must be printable ASCII without spaces"
        raise ValueError(msg)
    if "." in msg_id:
        # The signed content joins id, timestamp and body with full stops, so
        # the spec forbids them in the id: otherwise two different id and
        # timestamp pairs could produce the same signed content.
        msg = f"msg_id {msg_id!r} must not contain '.'; use new_message_id() or message_id_for()"
        raise ValueError(msg)
    if isinstance(timestamp, bool) or not isinstance(timestamp, int):
        msg = f"timestamp must be an int of Unix seconds, got {type(timestamp).__name__}"
        raise TypeError(msg)
    if timestamp < 0:
        msg = f"timestamp={timestamp} is negative; pass Unix seconds, e.g. int(time.time())"
        raise ValueError(msg)
    if not isinstance(body, bytes):
        # Signing a str would hide an encoding choice the receiver cannot see.
        msg = f"body must be bytes, got {type(body).__name__}; encode it before signing"
        raise TypeError(msg)
