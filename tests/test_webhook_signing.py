import base64
import hashlib
import re
import time
import uuid

import pytest
from standardwebhooks import Webhook, WebhookVerificationError

from webhooks.signing import (
    decode_secret,
    generate_secret,
    message_id_for,
    new_message_id,
    sign,
    signature_header,
)

# The worked example published in the Standard Webhooks specification.
SPEC_SECRET = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
SPEC_MSG_ID = "msg_p5jXN8AQM9LWM0D4loKWxJek"
SPEC_TIMESTAMP = 1614265330
SPEC_BODY = b'{"test": 2432232314}'
SPEC_SIGNATURE = "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE="

ID_PATTERN = re.compile(r"msg_[a-z2-7]{26}")


def headers_for(msg_id, timestamp, signature):
    return {
        "webhook-id": msg_id,
        "webhook-timestamp": str(timestamp),
        "webhook-signature": signature,
    }


def test_sign_reproduces_spec_example():
    signature = sign(SPEC_SECRET, SPEC_MSG_ID, SPEC_TIMESTAMP, SPEC_BODY)

    assert signature == SPEC_SIGNATURE


def test_sign_accepts_secret_without_prefix():
    bare_secret = SPEC_SECRET.removeprefix("whsec_")

    signature = sign(bare_secret, SPEC_MSG_ID, SPEC_TIMESTAMP, SPEC_BODY)

    assert signature == SPEC_SIGNATURE


def test_spec_body_verifies_with_standardwebhooks():
    # The library rejects timestamps older than five minutes, so the spec's
    # own timestamp cannot be used here.
    now = int(time.time())
    signature = sign(SPEC_SECRET, SPEC_MSG_ID, now, SPEC_BODY)

    payload = Webhook(SPEC_SECRET).verify(SPEC_BODY, headers_for(SPEC_MSG_ID, now, signature))

    assert payload == {"test": 2432232314}


def test_reserialized_body_fails_verification():
    now = int(time.time())
    signature = sign(SPEC_SECRET, SPEC_MSG_ID, now, SPEC_BODY)
    compact_body = b'{"test":2432232314}'

    with pytest.raises(WebhookVerificationError, match="No matching signature found"):
        Webhook(SPEC_SECRET).verify(compact_body, headers_for(SPEC_MSG_ID, now, signature))


@pytest.mark.parametrize("num_bytes", [24, 32, 64])
def test_generated_secrets_verify_with_standardwebhooks(num_bytes):
    secret = generate_secret(num_bytes)
    msg_id = new_message_id()
    now = int(time.time())
    body = '{"type": "ticket.opened", "subject": "Überweisung fehlgeschlagen"}'.encode()

    signature = sign(secret, msg_id, now, body)

    Webhook(secret).verify(body, headers_for(msg_id, now, signature))


def test_non_utf8_body_verifies_with_standardwebhooks():
    secret = generate_secret()
    now = int(time.time())
    body = b"\xff\xfe not UTF-8"

    signature = sign(secret, "msg_binary", now, body)

    Webhook(secret).verify(body, headers_for("msg_binary", now, signature), json_parse=False)


def test_signature_header_lists_one_signature_per_secret():
    old_secret = generate_secret()
    new_secret = generate_secret()

    header = signature_header([new_secret, old_secret], SPEC_MSG_ID, SPEC_TIMESTAMP, SPEC_BODY)

    assert header.split(" ") == [
        sign(new_secret, SPEC_MSG_ID, SPEC_TIMESTAMP, SPEC_BODY),
        sign(old_secret, SPEC_MSG_ID, SPEC_TIMESTAMP, SPEC_BODY),
    ]


def test_signature_header_verifies_with_either_secret():
    old_secret = generate_secret()
    new_secret = generate_secret()
    now = int(time.time())

    header = signature_header([new_secret, old_secret], SPEC_MSG_ID, now, SPEC_BODY)

    for secret in (old_secret, new_secret):
        Webhook(secret).verify(SPEC_BODY, headers_for(SPEC_MSG_ID, now, header))


def test_signature_header_fails_for_unlisted_secret():
    now = int(time.time())
    header = signature_header([generate_secret(), generate_secret()], SPEC_MSG_ID, now, SPEC_BODY)

    with pytest.raises(WebhookVerificationError, match="No matching signature found"):
        Webhook(generate_secret()).verify(SPEC_BODY, headers_for(SPEC_MSG_ID, now, header))


def test_signature_header_rejects_empty_list():
    with pytest.raises(ValueError, match="secrets is empty"):
        signature_header([], SPEC_MSG_ID, SPEC_TIMESTAMP, SPEC_BODY)


def test_signature_header_rejects_bare_string():
    with pytest.raises(TypeError, match="not a single string"):
        signature_header(SPEC_SECRET, SPEC_MSG_ID, SPEC_TIMESTAMP, SPEC_BODY)


@pytest.mark.parametrize("num_bytes", [24, 32, 64])
def test_generate_secret_has_requested_length(num_bytes):
    secret = generate_secret(num_bytes)

    assert secret.startswith("whsec_")
    assert len(base64.b64decode(secret.removeprefix("whsec_"), validate=True)) == num_bytes


def test_generate_secret_is_random():
    assert generate_secret() != generate_secret()


@pytest.mark.parametrize("num_bytes", [0, 23, 65, 128])
def test_generate_secret_rejects_length_out_of_range(num_bytes):
    with pytest.raises(ValueError, match=f"num_bytes={num_bytes} is out of range; use 24 to 64 bytes"):
        generate_secret(num_bytes)


def test_decode_secret_rejects_invalid_base64():
    with pytest.raises(ValueError, match="not valid base64") as excinfo:
        decode_secret("whsec_not*base64")

    assert "not*base64" not in str(excinfo.value)


def test_decode_secret_accepts_unpadded_base64():
    assert decode_secret("whsec_AAEC") == b"\x00\x01\x02"
    assert decode_secret("whsec_AAE") == b"\x00\x01"


def test_decode_secret_rejects_empty_secret():
    with pytest.raises(ValueError, match="webhook secret is empty"):
        decode_secret("whsec_")


def test_sign_rejects_str_body():
    with pytest.raises(TypeError, match="body must be bytes, got str"):
        sign(SPEC_SECRET, SPEC_MSG_ID, SPEC_TIMESTAMP, SPEC_BODY.decode())


def test_sign_rejects_float_timestamp():
    with pytest.raises(TypeError, match="timestamp must be an int of Unix seconds, got float"):
        sign(SPEC_SECRET, SPEC_MSG_ID, 1614265330.5, SPEC_BODY)


def test_sign_rejects_msg_id_with_newline():
    with pytest.raises(ValueError, match="must be printable ASCII without spaces"):
        sign(SPEC_SECRET, "msg_1\r\nx-injected: 1", SPEC_TIMESTAMP, SPEC_BODY)


def test_sign_rejects_msg_id_with_full_stop():
    with pytest.raises(ValueError, match="must not contain '.'"):
        sign(SPEC_SECRET, "msg_1.1614265330", SPEC_TIMESTAMP, SPEC_BODY)


def test_new_message_id_format():
    assert ID_PATTERN.fullmatch(new_message_id())


def test_new_message_id_is_random():
    assert new_message_id() != new_message_id()


def test_message_id_for_is_deterministic():
    endpoint_id = uuid.UUID("6f1e3c1a-9b1e-4f63-8a0e-2d4b5c6d7e8f")

    first = message_id_for(endpoint_id, 42)
    second = message_id_for(endpoint_id, 42)

    assert first == second
    assert ID_PATTERN.fullmatch(first)


def test_message_id_for_matches_uuid5_by_hand():
    # UUID version 5 per RFC 9562: SHA-1 over namespace bytes and name,
    # truncated to 16 bytes, then the version and variant bits are set.
    namespace = uuid.UUID("0b8f8a5e-3c1d-5d2a-9a4e-6f1c2b7d9e30")
    raw = bytearray(hashlib.sha1(namespace.bytes + b"endpoint-7:1234").digest()[:16])
    raw[6] = (raw[6] & 0x0F) | 0x50
    raw[8] = (raw[8] & 0x3F) | 0x80
    expected = "msg_" + base64.b32encode(bytes(raw)).decode().rstrip("=").lower()

    assert message_id_for("endpoint-7", 1234) == expected


def test_message_id_for_uuid_equals_string():
    endpoint_id = uuid.UUID("6f1e3c1a-9b1e-4f63-8a0e-2d4b5c6d7e8f")

    assert message_id_for(endpoint_id, 1) == message_id_for(str(endpoint_id), 1)


def test_message_id_for_differs_by_position_and_endpoint():
    ids = {
        message_id_for("endpoint-a", 1),
        message_id_for("endpoint-a", 2),
        message_id_for("endpoint-b", 1),
        message_id_for("endpoint-b", 2),
    }

    assert len(ids) == 4


def test_message_id_for_rejects_negative_position():
    with pytest.raises(ValueError, match="event_position=-1 is negative"):
        message_id_for("endpoint-a", -1)


def test_message_id_for_rejects_empty_endpoint():
    with pytest.raises(ValueError, match="endpoint_id is empty"):
        message_id_for("", 1)
