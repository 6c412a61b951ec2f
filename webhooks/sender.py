"""Send one signed webhook delivery attempt over HTTP.

``send`` never follows redirects, reads at most a small prefix of the
response, and reports transport failures in its result instead of raising, so
a delivery worker can record every attempt the same way and pass the result to
``retry.classify``. It does not check the URL: call ``guard.check_url`` first,
and pass a ``guard.guarded_session`` to repeat that check at connect time.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from urllib.parse import urlsplit

import requests
import urllib3.exceptions

from webhooks.guard import UnsafeURLError
from webhooks.signing import signature_header

logger = logging.getLogger(__name__)

USER_AGENT = "service-hub-webhooks/0.1"
DEFAULT_TIMEOUT_SECONDS = 10.0
DEFAULT_MAX_RESPONSE_BYTES = 1024


@dataclass(frozen=True)
class AttemptResult:
    """Outcome of one HTTP attempt to deliver a webhook message."""

    status: int | None
    """HTTP status code, or None when no response arrived."""

    latency_ms: float
    """Milliseconds from sending the request until the response prefix was read or the attempt failed."""

    response_body: str
    """First ``max_response_bytes`` of the response body, decoded as UTF-8 with invalid bytes replaced."""

    error: str | None
    """Transport error, such as a timeout or refused connection, or None."""

    retry_after: str | None
    """Unparsed value of the ``Retry-After`` response header, for ``retry.parse_retry_after``."""

    # Excluded from repr because it contains the signatures, and results tend
    # to end up in log lines.
    request_headers: dict[str, str] = field(repr=False)
    """Headers this attempt set on the request, signature included."""


def build_headers(
    msg_id: str, body: bytes, secrets: Sequence[str], timestamp: int
) -> dict[str, str]:
    """Build the Standard Webhooks request headers for one attempt."""
    return {
        "webhook-id": msg_id,
        "webhook-timestamp": str(timestamp),
        "webhook-signature": signature_header(secrets, msg_id, timestamp, body),
        "content-type": "application/json",
        "user-agent": USER_AGENT,
        # The response prefix is read as sent, without decompression, so the
        # receiver is asked for an uncompressed body.
        "accept-encoding": "identity",
    }


def send(
    url: str,
    msg_id: str,
    body: bytes,
    secrets: Sequence[str],
    *,
    timestamp: int,
    timeout: float = DEFAULT_TIMEOUT_SECONDS,
    max_response_bytes: int = DEFAULT_MAX_RESPONSE_BYTES,
    session: requests.Session | None = None,
) -> AttemptResult:
    """POST one signed webhook message to ``url`` and report what happened.

    ``body`` is sent byte for byte as signed. ``timestamp`` is the attempt's
    Unix time in seconds, so each retry passes a fresh one while ``msg_id``
    stays the same. ``timeout`` applies to connecting and to each read from
    the socket, not to the attempt as a whole. Without ``session``, a new
    ``requests.Session`` is used and closed, which honours the usual proxy
    environment variables.

    Timeouts, refused connections, TLS failures and a guarded session's
    rejection come back in ``AttemptResult.error``. Invalid arguments (a str
    body, no secrets) raise TypeError or ValueError.
    """
    if not timeout > 0:
        msg = f"timeout={timeout!r} is invalid; pass a positive number of seconds"
        raise ValueError(msg)
    if max_response_bytes < 0:
        msg = f"max_response_bytes={max_response_bytes} is negative; pass 0 to skip reading the body"
        raise ValueError(msg)
    headers = build_headers(msg_id, body, secrets, timestamp)
    host = _host_for_log(url)

    owns_session = session is None
    http = requests.Session() if session is None else session
    try:
        result = _post(http, url, body, headers, timeout, max_response_bytes)
    finally:
        if owns_session:
            http.close()

    if result.error is None:
        logger.debug(
            "Webhook message %s to host %s: status %s in %.0f ms",
            msg_id, host, result.status, result.latency_ms,
        )
    else:
        logger.warning(
            "Webhook message %s to host %s: status %s, %s after %.0f ms",
            msg_id, host, result.status, result.error, result.latency_ms,
        )
    return result


def _post(
    http: requests.Session,
    url: str,
    body: bytes,
    headers: dict[str, str],
    timeout: float,
    max_response_bytes: int,
) -> AttemptResult:
    status: int | None = None
    retry_after: str | None = None
    response_bytes = b""
    error: str | None = None

    # NOTE: requests applies ``timeout`` to each socket read, so a receiver
    # that trickles its status line and headers can hold an attempt open for
    # much longer. Enforcing a total deadline needs a watchdog around this call.
    started = time.perf_counter()
    try:
        response = http.post(
            url,
            data=body,
            headers=headers,
            timeout=timeout,
            allow_redirects=False,
            stream=True,
        )
    except requests.ConnectTimeout:
        error = f"connection timed out after {timeout:g} s"
    except requests.Timeout:
        error = f"timed out after {timeout:g} s waiting for the response"
    except requests.exceptions.SSLError as exc:
        error = f"TLS handshake failed: {_root_cause_text(exc)}"
    except (requests.exceptions.InvalidURL, requests.exceptions.MissingSchema, requests.exceptions.InvalidSchema) as exc:
        error = f"invalid URL ({type(exc).__name__})"
    except requests.RequestException as exc:
        error = f"connection failed: {_root_cause_text(exc)}"
    except UnsafeURLError as exc:
        # Raised from inside the connection by a guard.guarded_session.
        error = str(exc)
    else:
        # Closing the response without reading the rest drops the connection,
        # so a receiver that sends an endless body cannot hold the worker.
        with response:
            status = response.status_code
            retry_after = response.headers.get("retry-after")
            response_bytes, error = _read_prefix(response, max_response_bytes, timeout)
    latency_ms = (time.perf_counter() - started) * 1000

    return AttemptResult(
        status=status,
        latency_ms=latency_ms,
        response_body=response_bytes.decode("utf-8", errors="replace"),
        error=error,
        retry_after=retry_after,
        request_headers=headers,
    )


def _read_prefix(
    response: requests.Response, max_bytes: int, timeout: float
) -> tuple[bytes, str | None]:
    """Read at most ``max_bytes`` of the body, keeping what arrived before any error."""
    received = bytearray()
    try:
        while len(received) < max_bytes:
            # read1 returns whatever one socket read delivers, so bytes that
            # arrived before a timeout or a dropped connection are kept.
            chunk = response.raw.read1(max_bytes - len(received))
            if not chunk:
                break
            received += chunk
    except (urllib3.exceptions.HTTPError, OSError) as exc:
        if _is_timeout(exc):
            return bytes(received), f"timed out after {timeout:g} s reading the response body"
        return bytes(received), f"reading the response body failed: {_root_cause_text(exc)}"
    return bytes(received), None


def _host_for_log(url: str) -> str:
    # Only the host goes into log lines, because paths and queries of
    # webhook URLs often carry access tokens.
    try:
        return urlsplit(url).hostname or "(none)"
    except ValueError:
        return "(invalid URL)"


def _exception_chain(exc: BaseException) -> list[BaseException]:
    # requests wraps urllib3 errors, which wrap the socket error, through a
    # mix of __cause__, __context__, a ``reason`` attribute and args[0].
    chain: list[BaseException] = []
    current: BaseException | None = exc
    while current is not None and current not in chain:
        chain.append(current)
        reason = getattr(current, "reason", None)
        first_arg = current.args[0] if current.args else None
        if current.__cause__ is not None:
            current = current.__cause__
        elif isinstance(reason, BaseException):
            current = reason
        elif isinstance(first_arg, BaseException):
            current = first_arg
        else:
            current = current.__context__
    return chain


def _is_timeout(exc: BaseException) -> bool:
    timeout_types = (TimeoutError, urllib3.exceptions.TimeoutError)
    return any(isinstance(link, timeout_types) for link in _exception_chain(exc))


def _root_cause_text(exc: BaseException) -> str:
    """Describe the innermost cause, such as "Connection refused", without the URL."""
    root = _exception_chain(exc)[-1]
    if isinstance(root, OSError) and root.strerror:
        return root.strerror
    # urllib3's messages name the request path, which may carry a token, so
    # only the exception type is kept.
    return type(root).__name__
