"""Helpers for the topology tests: a fresh PostgreSQL schema, the Procfile's processes and a webhook receiver.

Every process runs in a session (process group) of its own, so that stopping
it also stops the workers it forked, and ``Processes`` stops every one of them
when its block ends, also after a failure.
"""

from __future__ import annotations

import os
import re
import shlex
import signal
import socket
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import psycopg
from psycopg import sql
from standardwebhooks.webhooks import Webhook, WebhookVerificationError

from hubtest import POSTGRES_URL

REPOSITORY = Path(__file__).resolve().parents[2]
BIN = Path(sys.executable).parent

# Seconds a process gets to stop after SIGTERM before it is killed.
STOP_TIMEOUT = 15.0


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@contextmanager
def fresh_schema(prefix: str = "topology") -> Iterator[str]:
    """Create an empty PostgreSQL schema in the test database and drop it with everything in it afterwards."""
    schema = f"{prefix}_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(POSTGRES_URL, autocommit=True) as connection:
        connection.execute(sql.SQL("CREATE SCHEMA {}").format(sql.Identifier(schema)))
    try:
        yield schema
    finally:
        with psycopg.connect(POSTGRES_URL, autocommit=True) as connection:
            connection.execute(sql.SQL("DROP SCHEMA {} CASCADE").format(sql.Identifier(schema)))


def query(schema: str, statement: str, params: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    """Run one read-only statement in ``schema`` and return its rows."""
    with psycopg.connect(POSTGRES_URL, options=f"-c search_path={schema}") as connection:
        return connection.execute(statement, params).fetchall()


# Procfile commands.


def procfile_commands(path: Path = REPOSITORY / "Procfile") -> dict[str, str]:
    """Return the command of each process type in a Procfile."""
    commands = {}
    for line in path.read_text().splitlines():
        if not line.strip() or line.lstrip().startswith("#"):
            continue
        name, separator, command = line.partition(":")
        if separator:
            commands[name.strip()] = command.strip()
    return commands


def expand(command: str, env: Mapping[str, str]) -> list[str]:
    """Split a Procfile command into arguments, expanding ``$NAME``, ``${NAME}`` and ``${NAME:-default}`` as sh does."""

    def substitute(match: re.Match[str]) -> str:
        name = match.group(1) or match.group(3)
        default = match.group(2)
        value = env.get(name, "")
        if default is not None and value == "":
            return default
        return value

    expanded = re.sub(r"\$\{(\w+)(?::-([^}]*))?\}|\$(\w+)", substitute, command)
    arguments = shlex.split(expanded)
    if (BIN / arguments[0]).exists():
        arguments[0] = str(BIN / arguments[0])
    return arguments


def web_command(port: int, workers: int, control_socket: Path) -> list[str]:
    """Return the Procfile's web command for ``workers`` gunicorn workers on 127.0.0.1:``port``."""
    arguments = expand(procfile_commands()["web"], {"WEB_CONCURRENCY": str(workers), "PORT": str(port)})
    # The Procfile binds every interface, as a platform's router expects; tests stay on loopback.
    bind = arguments.index("--bind")
    arguments[bind + 1] = f"127.0.0.1:{port}"
    # gunicorn 27 puts its control socket in ~/.gunicorn by default, where two
    # servers on one machine would replace each other's.
    return [*arguments, "--control-socket", str(control_socket)]


# Processes.


class Processes:
    """Subprocesses of the test, each in its own process group, with a log file each."""

    def __init__(self, folder: Path, env: Mapping[str, str]) -> None:
        self.folder = folder
        self.env = dict(env)
        self.running: dict[str, subprocess.Popen[bytes]] = {}

    def __enter__(self) -> Processes:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.stop_all()

    def hub(self, *arguments: str, timeout: float = 120) -> subprocess.CompletedProcess[str]:
        """Run one ``hub`` command to completion with the topology's environment."""
        return subprocess.run(
            [str(BIN / "hub"), *arguments], cwd=REPOSITORY, env=self.env,
            capture_output=True, text=True, timeout=timeout, check=False,
        )

    def start(self, name: str, arguments: list[str]) -> subprocess.Popen[bytes]:
        log = open(self.folder / f"{name}.log", "wb")  # noqa: SIM115 - the child keeps it open
        try:
            process = subprocess.Popen(
                arguments, cwd=REPOSITORY, env=self.env, stdout=log, stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        finally:
            log.close()
        self.running[name] = process
        return process

    def kill(self, name: str) -> None:
        """Kill a process and its children with SIGKILL, as a crash or a lost machine would."""
        process = self.running[name]
        os.killpg(process.pid, signal.SIGKILL)
        process.wait(timeout=STOP_TIMEOUT)

    def stop_all(self) -> None:
        """Send SIGTERM to every process group still running, then SIGKILL to those that did not stop."""
        for process in self.running.values():
            if process.poll() is None:
                _signal_group(process, signal.SIGTERM)
        deadline = time.monotonic() + STOP_TIMEOUT
        for process in self.running.values():
            try:
                process.wait(timeout=max(deadline - time.monotonic(), 0.1))
            except subprocess.TimeoutExpired:
                _signal_group(process, signal.SIGKILL)
                process.wait(timeout=STOP_TIMEOUT)
            # Forked workers may outlive their parent for a moment.
            _signal_group(process, signal.SIGKILL)

    def log(self, name: str) -> str:
        path = self.folder / f"{name}.log"
        return path.read_text(errors="replace") if path.exists() else ""

    def describe(self, lines: int = 25) -> str:
        """Return each process's exit status and the end of its log, for assertion messages."""
        parts = []
        for name, process in self.running.items():
            tail = "\n".join(self.log(name).splitlines()[-lines:])
            parts.append(f"--- {name} (exit status {process.poll()}):\n{tail}")
        return "\n".join(parts)


def _signal_group(process: subprocess.Popen[bytes], signum: int) -> None:
    try:
        os.killpg(process.pid, signum)
    except ProcessLookupError:
        pass


def wait_until(condition: Callable[[], Any], timeout: float, describe: Callable[[], str], interval: float = 0.2) -> Any:
    """Poll ``condition`` until it returns a true value and return that value; fail after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while True:
        result = condition()
        if result:
            return result
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout:g} s\n{describe()}")
        time.sleep(interval)


def pid_owning_connection(local_port: int, remote_port: int, candidates: list[int]) -> int | None:
    """Return which of ``candidates`` has the TCP connection from ``local_port`` to ``remote_port`` on loopback.

    Reads Linux's ``/proc/net/tcp`` for the socket's inode and each candidate's
    ``/proc/PID/fd`` for a descriptor on that inode.
    """
    inodes = set()
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        for line in Path(table).read_text().splitlines()[1:]:
            fields = line.split()
            local, remote, inode = fields[1], fields[2], fields[9]
            if int(local.rsplit(":", 1)[1], 16) == local_port and int(remote.rsplit(":", 1)[1], 16) == remote_port:
                inodes.add(f"socket:[{inode}]")
    for pid in candidates:
        for descriptor in Path(f"/proc/{pid}/fd").iterdir():
            try:
                if os.readlink(descriptor) in inodes:
                    return pid
            except OSError:
                continue
    return None


# The webhook receiver.


@dataclass(frozen=True)
class Arrival:
    """One request the receiver got: its webhook-id, body and the status it responded with (None: no response)."""

    message_id: str
    body: bytes
    status: int | None
    started: float
    finished: float
    client_port: int
    error: str | None = None


@dataclass(frozen=True)
class HeldRequest:
    message_id: str
    client_port: int


class WebhookReceiver:
    """An HTTP server on 127.0.0.1 that verifies Standard Webhooks signatures and records every request.

    It responds with 204 to a request with a valid signature, 400 to one
    without, and 503 while no secret is set. :meth:`hold` makes it keep one
    request open without a response until :meth:`release`, so that a test can
    kill the sender in mid-attempt.
    """

    def __init__(self) -> None:
        self.secret: str | None = None
        self._arrivals: list[Arrival] = []
        self._lock = threading.Lock()
        self._hold_at: int | None = None
        self._requests = 0
        self._held_request: HeldRequest | None = None
        self._held_event = threading.Event()
        self._release = threading.Event()
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), self._handler_class())
        self._server.daemon_threads = True
        self._thread = threading.Thread(target=self._server.serve_forever, name="webhook-receiver", daemon=True)

    def __enter__(self) -> WebhookReceiver:
        self._thread.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self._release.set()
        self._server.shutdown()
        self._server.server_close()

    @property
    def port(self) -> int:
        return int(self._server.server_address[1])

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/hooks"

    def hold(self, request_number: int) -> None:
        """Keep the ``request_number``-th request (counting from 1) open without a response."""
        self._hold_at = request_number

    def wait_held(self, timeout: float) -> HeldRequest | None:
        self._held_event.wait(timeout)
        return self._held_request

    def release(self) -> None:
        self._release.set()

    def arrivals(self) -> list[Arrival]:
        with self._lock:
            return list(self._arrivals)

    def _handler_class(self) -> type[BaseHTTPRequestHandler]:
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def do_POST(self) -> None:  # noqa: N802 - the name http.server dispatches to
                receiver._handle(self)

            def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - the base class's name
                pass

        return Handler

    def _handle(self, handler: BaseHTTPRequestHandler) -> None:
        started = time.monotonic()
        length = int(handler.headers.get("content-length", "0"))
        body = handler.rfile.read(length)
        message_id = handler.headers.get("webhook-id", "")
        client_port = int(handler.client_address[1])
        if len(body) < length:
            # The sender went away in the middle of the body (a killed worker), so
            # no client is left to read a response.
            handler.close_connection = True
            self._record(Arrival(message_id, body, None, started, time.monotonic(), client_port, "truncated body"))
            return
        with self._lock:
            self._requests += 1
            is_held_request = self._requests == self._hold_at
        if is_held_request:
            self._held_request = HeldRequest(message_id, client_port)
            self._held_event.set()
            self._release.wait(60)
            handler.close_connection = True
            self._record(Arrival(message_id, body, None, started, time.monotonic(), client_port))
            return

        error = None
        if self.secret is None:
            # No endpoint is subscribed yet, so nothing should arrive.
            status = 503
        else:
            status = 204
            try:
                Webhook(self.secret).verify(body, dict(handler.headers.items()))
            except WebhookVerificationError as verification_error:
                status = 400
                error = str(verification_error)
        handler.send_response(status)
        handler.send_header("Content-Length", "0")
        handler.end_headers()
        self._record(Arrival(message_id, body, status, started, time.monotonic(), client_port, error))

    def _record(self, arrival: Arrival) -> None:
        with self._lock:
            self._arrivals.append(arrival)
