import errno
import http.server
import logging
import os
import socket
import threading
import time

import pytest
from standardwebhooks import Webhook

from webhooks.guard import CONNECTORS, UnsafeURLError, guarded_session
from webhooks.sender import send
from webhooks.signing import generate_secret, signature_header

BODY = '{"type": "ticket.opened", "data": {"subject": "Zahlung fehlgeschlagen – bitte prüfen"}}'.encode()
MSG_ID = "msg_4wtq3z7ykb3oxg2d6sfqkdyx7m"


class RecordingHandler(http.server.BaseHTTPRequestHandler):
    """Records each request on the server, then runs the server's ``respond`` behaviour."""

    def do_POST(self):
        length = int(self.headers.get("content-length", "0"))
        body = self.rfile.read(length)
        self.server.recorded.append(
            {"path": self.path, "headers": dict(self.headers.items()), "body": body}
        )
        try:
            self.server.respond(self)
        except (BrokenPipeError, ConnectionResetError):
            # The client stopped reading, which several tests cause on purpose.
            pass

    # A client that wrongly followed a 302 would come back with GET.
    do_GET = do_POST

    def log_message(self, format, *args):
        pass


class Receiver:
    """A real HTTP server on 127.0.0.1 with a chosen response behaviour."""

    def __init__(self, respond):
        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), RecordingHandler)
        self.server.recorded = []
        self.server.respond = respond
        self.thread = threading.Thread(
            target=self.server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
        )
        self.thread.start()

    @property
    def recorded(self):
        return self.server.recorded

    def url(self, path="/hooks"):
        host, port = self.server.server_address[:2]
        return f"http://{host}:{port}{path}"

    def stop(self):
        self.server.shutdown()
        self.server.server_close()
        self.thread.join()


@pytest.fixture
def receiver():
    started = []
    release = threading.Event()

    def start(respond):
        started.append(Receiver(respond))
        return started[-1]

    start.release = release
    yield start

    # Lets handlers that wait on the event finish before the servers stop.
    release.set()
    for running in started:
        running.stop()


def reply(status, body=b"", headers=()):
    def respond(handler):
        handler.send_response(status)
        for name, value in headers:
            handler.send_header(name, value)
        handler.send_header("content-length", str(len(body)))
        handler.end_headers()
        handler.wfile.write(body)

    return respond


def now():
    return int(time.time())


def test_send_headers_verify_with_standardwebhooks(receiver):
    new_secret, old_secret = generate_secret(), generate_secret()
    target = receiver(reply(204))

    send(target.url(), MSG_ID, BODY, [new_secret, old_secret], timestamp=now())

    [request] = target.recorded
    for secret in (new_secret, old_secret):
        assert Webhook(secret).verify(request["body"], request["headers"]) == {
            "type": "ticket.opened",
            "data": {"subject": "Zahlung fehlgeschlagen – bitte prüfen"},
        }


def test_send_sets_expected_headers(receiver):
    secret = generate_secret()
    timestamp = now()
    target = receiver(reply(204))

    send(target.url(), MSG_ID, BODY, [secret], timestamp=timestamp)

    headers = {name.lower(): value for name, value in target.recorded[0]["headers"].items()}
    assert headers["webhook-id"] == MSG_ID
    assert headers["webhook-timestamp"] == str(timestamp)
    assert headers["content-type"] == "application/json"
    assert headers["user-agent"] == "service-hub-webhooks/0.1"
    assert headers["accept-encoding"] == "identity"


def test_send_body_bytes_match_signed(receiver):
    secret = generate_secret()
    timestamp = now()
    target = receiver(reply(204))

    result = send(target.url("/hooks?tenant=7"), MSG_ID, BODY, [secret], timestamp=timestamp)

    [request] = target.recorded
    assert request["path"] == "/hooks?tenant=7"
    assert request["body"] == BODY
    assert result.request_headers["webhook-signature"] == signature_header([secret], MSG_ID, timestamp, BODY)


def test_send_returns_status_and_body(receiver):
    target = receiver(reply(200, b'{"received": true}'))

    result = send(target.url(), MSG_ID, BODY, [generate_secret()], timestamp=now())

    assert result.status == 200
    assert result.response_body == '{"received": true}'
    assert result.error is None
    assert result.retry_after is None
    assert result.latency_ms > 0


def test_send_returns_retry_after(receiver):
    target = receiver(reply(503, b"busy", headers=[("Retry-After", "120")]))

    result = send(target.url(), MSG_ID, BODY, [generate_secret()], timestamp=now())

    assert result.status == 503
    assert result.retry_after == "120"
    assert result.response_body == "busy"
    assert result.error is None


def test_send_does_not_follow_redirect(receiver):
    target = receiver(reply(302, headers=[("Location", "/elsewhere")]))

    result = send(target.url(), MSG_ID, BODY, [generate_secret()], timestamp=now())

    assert result.status == 302
    assert result.error is None
    assert [request["path"] for request in target.recorded] == ["/hooks"]


def test_send_slow_receiver_times_out(receiver):
    def respond_late(handler):
        receiver.release.wait(timeout=10)
        reply(200, b"too late")(handler)

    target = receiver(respond_late)

    result = send(target.url(), MSG_ID, BODY, [generate_secret()], timestamp=now(), timeout=0.5)

    assert result.status is None
    assert result.error == "timed out after 0.5 s waiting for the response"
    assert result.response_body == ""


def test_send_stalled_body_times_out(receiver):
    def respond_then_stall(handler):
        handler.send_response(200)
        handler.send_header("content-length", "100")
        handler.end_headers()
        handler.wfile.write(b"partial")
        handler.wfile.flush()
        receiver.release.wait(timeout=10)

    target = receiver(respond_then_stall)

    result = send(target.url(), MSG_ID, BODY, [generate_secret()], timestamp=now(), timeout=0.5)

    assert result.status == 200
    assert result.error == "timed out after 0.5 s reading the response body"
    assert result.response_body == "partial"


def test_send_truncates_huge_response(receiver):
    # 4 MiB of a repeating pattern, so the first 1024 bytes are known exactly.
    huge_body = bytes(range(97, 123)) * (4 * 1024 * 1024 // 26)
    target = receiver(reply(200, huge_body))

    result = send(target.url(), MSG_ID, BODY, [generate_secret()], timestamp=now())

    assert result.status == 200
    assert result.error is None
    assert len(result.response_body) == 1024
    assert result.response_body == huge_body[:1024].decode("ascii")


def test_send_truncation_replaces_split_character(receiver):
    # One ASCII byte, then two-byte "é" characters: byte 1024 is the first
    # half of the 512th "é", which decodes to U+FFFD.
    target = receiver(reply(200, b"x" + "é".encode() * 1000))

    result = send(target.url(), MSG_ID, BODY, [generate_secret()], timestamp=now())

    assert result.response_body == "x" + "é" * 511 + "\ufffd"


def test_send_reads_chunked_response(receiver):
    def respond_chunked(handler):
        handler.send_response(200)
        handler.send_header("transfer-encoding", "chunked")
        handler.end_headers()
        handler.wfile.write(b"6\r\nhello \r\n5\r\nworld\r\n0\r\n\r\n")

    target = receiver(respond_chunked)

    result = send(target.url(), MSG_ID, BODY, [generate_secret()], timestamp=now())

    assert result.status == 200
    assert result.response_body == "hello world"
    assert result.error is None


def test_send_honours_response_limit(receiver):
    target = receiver(reply(500, b"0123456789abcdef"))

    result = send(target.url(), MSG_ID, BODY, [generate_secret()], timestamp=now(), max_response_bytes=10)

    assert result.status == 500
    assert result.response_body == "0123456789"


def test_send_zero_limit_skips_body(receiver):
    target = receiver(reply(200, b"ignored"))

    result = send(target.url(), MSG_ID, BODY, [generate_secret()], timestamp=now(), max_response_bytes=0)

    assert result.status == 200
    assert result.response_body == ""


def test_send_short_body_reports_error(receiver):
    def respond_and_close_early(handler):
        handler.send_response(200)
        handler.send_header("content-length", "100")
        handler.end_headers()
        handler.wfile.write(b"only part")
        handler.close_connection = True

    target = receiver(respond_and_close_early)

    result = send(target.url(), MSG_ID, BODY, [generate_secret()], timestamp=now())

    assert result.status == 200
    assert result.response_body == "only part"
    assert result.error == "reading the response body failed: IncompleteRead"


def test_send_connection_refused_returns_error():
    # A bound socket that never listens refuses connections, and keeping it
    # open stops another process from taking the port during the test.
    with socket.socket() as closed_port:
        closed_port.bind(("127.0.0.1", 0))
        port = closed_port.getsockname()[1]

        result = send(f"http://127.0.0.1:{port}/hooks", MSG_ID, BODY, [generate_secret()], timestamp=now())

    assert result.status is None
    assert result.error == f"connection failed: {os.strerror(errno.ECONNREFUSED)}"
    assert result.response_body == ""
    assert result.retry_after is None


def test_send_tls_failure_returns_error(receiver):
    # An https URL on a plain-HTTP receiver fails in the TLS handshake.
    target = receiver(reply(204))
    https_url = target.url().replace("http://", "https://", 1)

    result = send(https_url, MSG_ID, BODY, [generate_secret()], timestamp=now())

    assert result.status is None
    assert result.error.startswith("TLS handshake failed: ")
    assert "/hooks" not in result.error


def test_send_uses_given_session(receiver):
    target = receiver(reply(204))

    with guarded_session(allow_private=True) as session:
        session.headers["x-delivery-worker"] = "worker-3"
        result = send(target.url(), MSG_ID, BODY, [generate_secret()], timestamp=now(), session=session)

    assert result.status == 204
    assert target.recorded[0]["headers"]["x-delivery-worker"] == "worker-3"


def test_guarded_session_rejects_loopback_peer(receiver):
    target = receiver(reply(204))

    with guarded_session(allow_private=False) as session:
        result = send(target.url(), MSG_ID, BODY, [generate_secret()], timestamp=now(), session=session)

    assert result.status is None
    assert result.error == (
        "Webhook connection reached 127.0.0.1, which is a loopback address. "
        "Set HUB_WEBHOOKS_ALLOW_PRIVATE=1 to allow receivers on a private network or on this host."
    )
    assert target.recorded == []


def test_guarded_session_ignores_proxy_env(monkeypatch, receiver):
    # A proxy on a closed port would make every request fail, so a 204 shows
    # the session connected to the receiver directly.
    with socket.socket() as closed_port:
        closed_port.bind(("127.0.0.1", 0))
        monkeypatch.setenv("HTTP_PROXY", f"http://127.0.0.1:{closed_port.getsockname()[1]}")
        monkeypatch.setenv("NO_PROXY", "")
        target = receiver(reply(204))

        with guarded_session(allow_private=True) as session:
            result = send(target.url(), MSG_ID, BODY, [generate_secret()], timestamp=now(), session=session)

    assert result.status == 204


def test_send_logs_no_secret_or_signature(receiver, caplog):
    secret = generate_secret()
    target = receiver(reply(503, b"busy"))
    caplog.set_level(logging.DEBUG)

    result = send(target.url("/hooks/token-abc"), MSG_ID, BODY, [secret], timestamp=now())

    signature = result.request_headers["webhook-signature"]
    # urllib3 logs the request path at DEBUG level, which is outside this
    # package's control, so only this package's records are checked.
    records = [record for record in caplog.records if record.name.startswith("webhooks")]
    assert records
    for record in records:
        line = record.getMessage()
        assert secret.removeprefix("whsec_") not in line
        assert signature.removeprefix("v1,") not in line
        assert "token-abc" not in line


def test_send_logs_message_id_and_host(receiver, caplog):
    with socket.socket() as closed_port:
        closed_port.bind(("127.0.0.1", 0))
        port = closed_port.getsockname()[1]
        caplog.set_level(logging.WARNING, logger="webhooks.sender")

        send(f"http://127.0.0.1:{port}/hooks", MSG_ID, BODY, [generate_secret()], timestamp=now())

    [record] = caplog.records
    assert record.levelno == logging.WARNING
    assert MSG_ID in record.getMessage()
    assert "host 127.0.0.1" in record.getMessage()


def test_result_repr_hides_signature(receiver):
    target = receiver(reply(204))

    result = send(target.url(), MSG_ID, BODY, [generate_secret()], timestamp=now())

    assert "webhook-signature" not in repr(result)
    assert result.request_headers["webhook-signature"].removeprefix("v1,") not in repr(result)


def test_send_invalid_url_returns_error():
    result = send("hooks.example.test/events", MSG_ID, BODY, [generate_secret()], timestamp=now())

    assert result.status is None
    assert result.error == "invalid URL (MissingSchema)"


def test_send_rejects_str_body():
    with pytest.raises(TypeError, match="body must be bytes, got str"):
        send("http://127.0.0.1:9/hooks", MSG_ID, BODY.decode(), [generate_secret()], timestamp=now())


def test_send_rejects_empty_secrets():
    with pytest.raises(ValueError, match="secrets is empty"):
        send("http://127.0.0.1:9/hooks", MSG_ID, BODY, [], timestamp=now())


def test_send_rejects_non_positive_timeout():
    with pytest.raises(ValueError, match="timeout=0 is invalid"):
        send("http://127.0.0.1:9/hooks", MSG_ID, BODY, [generate_secret()], timestamp=now(), timeout=0)


def test_connector_session_names_connectors_setting(receiver):
    target = receiver(reply(204))

    with guarded_session(allow_private=False, purpose=CONNECTORS) as session:
        with pytest.raises(UnsafeURLError) as excinfo:
            session.get(target.url(), timeout=10)

    assert str(excinfo.value) == (
        "Connector connection reached 127.0.0.1, which is a loopback address. "
        "Set HUB_CONNECTORS_ALLOW_PRIVATE=1 to allow tool servers on a private network or on this host."
    )
    assert target.recorded == []
