"""The HTTP policy that every vendor connector shares.

One written policy decides what happens to each response:

* 2xx is returned to the caller.
* 429, 5xx and connection errors are retried with exponential backoff and jitter,
  up to `RetryPolicy.max_attempts` tries in all. A `Retry-After` header, in seconds
  or as an HTTP-date, replaces the computed backoff.
* 401 and 403 raise `ConnectorAuthError`, naming the connection and what to check.
* Every other status raises `FatalAPIError` with the status, reason and path.

Requests that are not idempotent (a POST, or a comment added by PUT) are retried
only when the server cannot have acted on them: after a 429, or when the
connection could not be opened. Otherwise a transient failure raises
`RetriableAPIError` at once, so that a reply is never posted twice.
"""

from __future__ import annotations

import email.utils
import logging
import random
import time
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Any, ClassVar, Literal, Protocol
from urllib.parse import urlsplit

import requests
import requests.auth
from urllib3.exceptions import MaxRetryError, NewConnectionError

logger = logging.getLogger(__name__)

ResponseClass = Literal["ok", "retry", "auth", "fatal"]

USER_AGENT = "service-hub-connector/0.1"

# Methods whose repetition leaves the server in the same state (RFC 9110, 9.2.2).
IDEMPOTENT_METHODS = frozenset({"GET", "HEAD", "OPTIONS", "PUT", "DELETE"})

LOOPBACK_HOSTS = frozenset({"localhost", "127.0.0.1", "::1"})

# Hints appended to FatalAPIError messages for the statuses a connector meets most.
_FATAL_STATUS_HINTS = {
    400: "the vendor rejected the request parameters or body; check the values sent",
    404: "the record does not exist or base_url is wrong; check both",
    409: "the record changed while it was being updated; fetch it again and retry",
    422: "the vendor rejected a field value; check the fields sent",
}


def classify_response(status: int) -> ResponseClass:
    """Return what the connector policy does with an HTTP status code.

    "ok" returns the response, "retry" waits and tries again, "auth" raises
    `ConnectorAuthError` and "fatal" raises `FatalAPIError`.
    """
    if 200 <= status < 300:
        return "ok"
    if status == 429 or 500 <= status < 600:
        return "retry"
    if status in (401, 403):
        return "auth"
    return "fatal"


class Clock(Protocol):
    """Source of the current time and of waiting, injectable for tests."""

    def now(self) -> datetime: ...

    def sleep(self, seconds: float) -> None: ...


class SystemClock:
    """Wall clock in UTC that really sleeps."""

    def now(self) -> datetime:
        return datetime.now(timezone.utc)

    def sleep(self, seconds: float) -> None:
        time.sleep(seconds)


class RandomSource(Protocol):
    """The part of `random.Random` that the backoff jitter uses."""

    def random(self) -> float: ...


@dataclass(frozen=True)
class RetryPolicy:
    """Retry limits and backoff schedule for one client.

    The wait before retry n (n = 1 for the first retry) is
    `min(max_delay, base_delay * 2 ** (n - 1))`, reduced by a random share of up
    to `jitter` of itself so that clients rate-limited together do not retry in
    step. A `Retry-After` header replaces that wait. If the header requests more
    than `max_retry_after` seconds, the request fails at once instead.
    """

    max_attempts: int = 5
    base_delay: float = 1.0
    max_delay: float = 60.0
    jitter: float = 0.5
    max_retry_after: float = 900.0

    def __post_init__(self) -> None:
        if self.max_attempts < 1:
            msg = f"max_attempts must be at least 1, got {self.max_attempts}"
            raise ValueError(msg)
        if self.base_delay < 0 or self.max_delay < 0 or self.max_retry_after < 0:
            msg = "base_delay, max_delay and max_retry_after must not be negative"
            raise ValueError(msg)
        if not 0.0 <= self.jitter <= 1.0:
            msg = f"jitter must be between 0 and 1, got {self.jitter}"
            raise ValueError(msg)

    def backoff(self, retry_number: int, rng: RandomSource) -> float:
        """Return the seconds to wait before retry number `retry_number`."""
        capped = min(self.max_delay, self.base_delay * 2 ** (retry_number - 1))
        return capped * (1.0 - self.jitter * rng.random())


def parse_retry_after(value: str | None, now: datetime) -> float | None:
    """Return the wait that a `Retry-After` header requests, in seconds.

    The header contains either a number of seconds or an HTTP-date (RFC 9110,
    10.2.3). A date in the past gives 0. An absent or unreadable header gives
    None, so the caller falls back to its own backoff.
    """
    if value is None:
        return None
    text = value.strip()
    if text.isascii() and text.isdigit():
        return float(text)
    try:
        moment = email.utils.parsedate_to_datetime(text)
    except (TypeError, ValueError):
        return None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=timezone.utc)
    return max(0.0, (moment - now).total_seconds())


class BearerAuth(requests.auth.AuthBase):
    """OAuth 2.0 bearer token for `requests`; its repr never shows the token."""

    def __init__(self, token: str) -> None:
        if not token:
            msg = "the OAuth token is empty; set a non-empty access token"
            raise ValueError(msg)
        self._token = token

    def __call__(self, request: requests.PreparedRequest) -> requests.PreparedRequest:
        request.headers["Authorization"] = f"Bearer {self._token}"
        return request

    def __repr__(self) -> str:
        return "BearerAuth(token=<redacted>)"


class ConnectorError(Exception):
    """Base class for the errors a connector client raises."""

    def __init__(self, message: str, *, connection_id: str) -> None:
        super().__init__(message)
        self.connection_id = connection_id


class FatalAPIError(ConnectorError):
    """The vendor rejected the request; repeating it unchanged will fail again."""

    def __init__(
        self,
        message: str,
        *,
        connection_id: str,
        status: int | None,
        reason: str,
        method: str,
        path: str,
        response: requests.Response | None = None,
    ) -> None:
        super().__init__(message, connection_id=connection_id)
        self.status = status
        self.reason = reason
        self.method = method
        self.path = path
        self.response = response


class ConnectorAuthError(FatalAPIError):
    """The vendor returned 401 or 403, so the credentials or permissions need fixing."""


class UnexpectedResponseError(FatalAPIError):
    """A 2xx response whose body is not the JSON shape the vendor documents."""


class RetriableAPIError(ConnectorError):
    """A transient failure (429, 5xx, connection error) that was not resolved.

    `attempts` is the number of requests sent. Running the sync again later is safe.
    """

    def __init__(
        self,
        message: str,
        *,
        connection_id: str,
        attempts: int,
        status: int | None,
        method: str,
        path: str,
    ) -> None:
        super().__init__(message, connection_id=connection_id)
        self.attempts = attempts
        self.status = status
        self.method = method
        self.path = path


class RetriesExhaustedError(RetriableAPIError):
    """Every try allowed by the `RetryPolicy` failed with a transient error."""


class PaginationLoopError(ConnectorError):
    """The vendor returned the same page token twice in a row."""


class PaginationGuard:
    """Detects a page token or cursor that repeats, which would page forever.

    Call `check` with each token that the client is about to request next.
    """

    def __init__(self, client: ConnectorClient, endpoint: str, start: object = None) -> None:
        self._client = client
        self._endpoint = endpoint
        self._last = start

    def check(self, token: object) -> None:
        """Remember `token`; raise `PaginationLoopError` if it equals the previous one."""
        if token is not None and token == self._last:
            token_text = repr(token)
            if len(token_text) > 80:
                token_text = token_text[:77] + "..."
            msg = (
                f"{self._client.vendor} returned the page token {token_text} twice in a row "
                f"for {self._endpoint} on connection {self._client.connection_label}; "
                "paging stopped so that the same page is not fetched forever. "
                "Run the sync again later, and report it to the vendor if it repeats."
            )
            raise PaginationLoopError(msg, connection_id=self._client.connection_id)
        self._last = token


class ConnectorClient:
    """Base class for the vendor clients: session, base URL, auth, timeout, retries.

    Subclasses set `vendor`, `credential_hint` and `permission_hint`, which the
    error messages use, and call `get_json`/`send_json` with paths below
    `base_url`. The client never follows URLs from a response body, so the
    credentials are only ever sent to `base_url`.
    """

    vendor: ClassVar[str] = "The vendor"
    credential_hint: ClassVar[str] = "the credentials configured for this connection"
    permission_hint: ClassVar[str] = "the account's role and permissions"

    def __init__(
        self,
        base_url: str,
        *,
        connection_id: str,
        connection_name: str | None = None,
        auth: requests.auth.AuthBase | tuple[str, str] | None = None,
        session: requests.Session | None = None,
        timeout: float | tuple[float, float] = (5.0, 30.0),
        clock: Clock | None = None,
        retry_policy: RetryPolicy | None = None,
        rng: RandomSource | None = None,
    ) -> None:
        if not connection_id:
            msg = "connection_id is empty; pass the id of the connection this client serves"
            raise ValueError(msg)
        self.base_url = _check_base_url(base_url)
        self.connection_id = connection_id
        self.connection_name = connection_name
        self.session = session if session is not None else requests.Session()
        self.timeout = timeout
        self.clock: Clock = clock if clock is not None else SystemClock()
        self.retry_policy = retry_policy if retry_policy is not None else RetryPolicy()
        self.rng: RandomSource = rng if rng is not None else random.Random()
        self._auth = auth

    def __repr__(self) -> str:
        return f"{type(self).__name__}(base_url={self.base_url!r}, connection_id={self.connection_id!r})"

    @property
    def connection_label(self) -> str:
        """The connection as error messages name it: name and id, never credentials."""
        if self.connection_name:
            return f"{self.connection_name!r} (id {self.connection_id})"
        return f"id {self.connection_id}"

    def get_json(self, path: str, params: Mapping[str, Any] | None = None) -> Any:
        """Send a GET to `path` under the policy and return the decoded JSON body."""
        response = self.request("GET", path, params=params)
        return self.decode_json(response)

    def send_json(
        self,
        method: str,
        path: str,
        body: Any,
        *,
        idempotent: bool | None = None,
    ) -> Any:
        """Send `body` as JSON with `method` and return the decoded JSON response."""
        response = self.request(method, path, json=body, idempotent=idempotent)
        return self.decode_json(response)

    def request(
        self,
        method: str,
        path: str,
        *,
        params: Mapping[str, Any] | None = None,
        json: Any = None,
        idempotent: bool | None = None,
    ) -> requests.Response:
        """Send one request under the retry policy and return the 2xx response.

        `idempotent` defaults from the method (GET, HEAD, OPTIONS, PUT, DELETE).
        Pass False for a PUT that appends, such as a new comment.
        """
        method = method.upper()
        if idempotent is None:
            idempotent = method in IDEMPOTENT_METHODS
        url = self._url(path)
        attempt = 0
        while True:
            attempt += 1
            try:
                response = self.session.request(
                    method,
                    url,
                    params=params,
                    json=json,
                    auth=self._auth,
                    timeout=self.timeout,
                    headers={"Accept": "application/json", "User-Agent": USER_AGENT},
                )
            except (requests.ConnectionError, requests.Timeout, requests.exceptions.ChunkedEncodingError) as exc:
                # A failed connect means the server never saw the request, so even a
                # POST may be repeated; any later failure may have been acted on.
                never_sent = isinstance(exc, requests.ConnectTimeout) or (
                    isinstance(exc, requests.ConnectionError) and _is_connect_failure(exc)
                )
                problem = f"connection error ({type(exc).__name__})"
                wait = self._retry_wait(
                    attempt, method, path, problem, None, safe=idempotent or never_sent, retry_after=None
                )
                self.clock.sleep(wait)
                continue

            verdict = classify_response(response.status_code)
            if verdict == "ok":
                return response
            if verdict == "auth":
                raise self._auth_error(response, method, path)
            if verdict == "fatal":
                raise self._fatal_error(response, method, path)

            status = response.status_code
            problem = f"{status} {response.reason or ''}".strip()
            retry_after = parse_retry_after(response.headers.get("Retry-After"), self.clock.now())
            response.close()
            wait = self._retry_wait(
                attempt,
                method,
                path,
                problem,
                status,
                safe=idempotent or status == 429,
                retry_after=retry_after,
            )
            self.clock.sleep(wait)

    def decode_json(self, response: requests.Response) -> Any:
        """Return the JSON body of a 2xx response, or raise `UnexpectedResponseError`."""
        method = (response.request.method or "") if response.request is not None else ""
        path = urlsplit(response.url).path
        try:
            return response.json()
        except ValueError:
            content_type = response.headers.get("Content-Type", "")
            msg = (
                f"{self.vendor} returned {response.status_code} for {method} {path} on connection "
                f"{self.connection_label} with a body that is not JSON "
                f"(Content-Type {content_type!r}); check that base_url {self.base_url} is the API root"
            )
            raise UnexpectedResponseError(
                msg,
                connection_id=self.connection_id,
                status=response.status_code,
                reason=response.reason or "",
                method=method,
                path=path,
                response=response,
            ) from None

    def unexpected_payload(self, path: str, detail: str, *, method: str = "GET") -> UnexpectedResponseError:
        """Build the error for a 2xx JSON body that lacks a documented field."""
        msg = (
            f"{self.vendor} returned a body for {method} {path} on connection {self.connection_label} "
            f"that does not match its documented format: {detail}"
        )
        return UnexpectedResponseError(
            msg,
            connection_id=self.connection_id,
            status=None,
            reason="",
            method=method,
            path=path,
        )

    def _url(self, path: str) -> str:
        if not path.startswith("/"):
            msg = f"path {path!r} must start with '/'; it is joined to base_url {self.base_url}"
            raise ValueError(msg)
        return self.base_url + path

    def _retry_wait(
        self,
        attempt: int,
        method: str,
        path: str,
        problem: str,
        status: int | None,
        *,
        safe: bool,
        retry_after: float | None,
    ) -> float:
        """Return the seconds to wait before the next try, or raise if none is allowed."""
        policy = self.retry_policy
        where = f"{method} {path} for connection {self.connection_label}"
        if not safe:
            msg = (
                f"{self.vendor} {where} failed with {problem} after {attempt} attempt(s); "
                "it was not repeated because the vendor may already have applied it. "
                "Check the record in the vendor's tool before sending it again."
            )
            raise RetriableAPIError(
                msg, connection_id=self.connection_id, attempts=attempt, status=status, method=method, path=path
            )
        if attempt >= policy.max_attempts:
            msg = (
                f"{self.vendor} {where} still failed with {problem} after {attempt} attempts; "
                "run the sync again later or raise RetryPolicy.max_attempts."
            )
            raise RetriesExhaustedError(
                msg, connection_id=self.connection_id, attempts=attempt, status=status, method=method, path=path
            )
        if retry_after is not None and retry_after > policy.max_retry_after:
            msg = (
                f"{self.vendor} {where} failed with {problem} and asked to wait {retry_after:.0f} s, "
                f"longer than RetryPolicy.max_retry_after ({policy.max_retry_after:.0f} s); "
                "run the sync again after that time."
            )
            raise RetriableAPIError(
                msg, connection_id=self.connection_id, attempts=attempt, status=status, method=method, path=path
            )
        wait = retry_after if retry_after is not None else policy.backoff(attempt, self.rng)
        logger.warning(
            "Retrying %s %s for connection %s: attempt %d of %d failed with %s; waiting %.1f s",
            method,
            path,
            self.connection_id,
            attempt,
            policy.max_attempts,
            problem,
            wait,
        )
        return wait

    def _auth_error(self, response: requests.Response, method: str, path: str) -> ConnectorAuthError:
        status = response.status_code
        reason = response.reason or ""
        if status == 401:
            msg = (
                f"{self.vendor} rejected the credentials of connection {self.connection_label} "
                f"with 401 {reason} on {method} {path}; check {self.credential_hint} "
                "and that they have not expired or been revoked."
            )
        else:
            msg = (
                f"{self.vendor} denied connection {self.connection_label} access with "
                f"403 {reason} on {method} {path}; check {self.permission_hint} for this endpoint."
            )
        return ConnectorAuthError(
            msg,
            connection_id=self.connection_id,
            status=status,
            reason=reason,
            method=method,
            path=path,
            response=response,
        )

    def _fatal_error(self, response: requests.Response, method: str, path: str) -> FatalAPIError:
        status = response.status_code
        reason = response.reason or ""
        hint = _FATAL_STATUS_HINTS.get(status, "the request is not retried; fix it before sending it again")
        msg = (
            f"{self.vendor} returned {status} {reason} for {method} {path} "
            f"on connection {self.connection_label}: {hint}."
        )
        return FatalAPIError(
            msg,
            connection_id=self.connection_id,
            status=status,
            reason=reason,
            method=method,
            path=path,
            response=response,
        )


def _check_base_url(base_url: str) -> str:
    parts = urlsplit(base_url)
    if not parts.netloc or parts.scheme not in ("https", "http"):
        msg = f"base_url {base_url!r} is not an absolute URL; use the form https://example.zendesk.com"
        raise ValueError(msg)
    # Credentials travel in every request, so plain HTTP is allowed only on loopback.
    if parts.scheme == "http" and parts.hostname not in LOOPBACK_HOSTS:
        msg = f"base_url {base_url!r} uses plain http; use https so that the credentials are encrypted"
        raise ValueError(msg)
    if parts.query or parts.fragment:
        msg = f"base_url {base_url!r} has a query or fragment; pass only the scheme, host and path prefix"
        raise ValueError(msg)
    return base_url.rstrip("/")


def _is_connect_failure(exc: requests.ConnectionError) -> bool:
    """Return whether urllib3 failed while opening the connection, before sending."""
    # requests wraps urllib3's MaxRetryError, whose `reason` is a NewConnectionError
    # (refused, DNS failure) when the socket never connected.
    cause = exc.args[0] if exc.args else None
    if isinstance(cause, MaxRetryError):
        return isinstance(cause.reason, NewConnectionError)
    return isinstance(cause, NewConnectionError)
