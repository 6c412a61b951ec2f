"""Benchmark the production topology on PostgreSQL: intake over HTTP through 1 and 2 web processes.

Usage::

    python bench/topology.py                         # 1 and 2 web processes, 2000 requests each
    python bench/topology.py --requests 500 --web-concurrency 2
    python bench/topology.py --worker-after-intake   # the views catch up on a backlog
    python bench/topology.py --env HUB_POSTGRES_POOL_SIZE=4 --env HUB_POSTGRES_MAX_OVERFLOW=0

For each number of web processes, the script creates a new PostgreSQL schema,
runs ``hub db init``, and starts that many Procfile ``web`` processes (gunicorn
with ``--web-concurrency`` workers each, bound to 127.0.0.1) and one Procfile
``worker``, all with ``HUB_CREATE_TABLE=n``. ``--clients`` threads then send
``POST /api/v1/tickets`` on keep-alive connections, spread evenly over the web
processes, after a warm-up. It reports requests/s and p50/p99 latency, how far
the views lagged behind when the last response arrived, and the seconds from
then until every view had applied the last event (the catch-up time), polled
every 20 ms. With ``--worker-after-intake`` the worker starts only after the
last response, so the catch-up time covers its start and the whole backlog.
The most PostgreSQL connections the processes held at once are counted from
``pg_stat_activity`` every 100 ms, per process, by matching each session's
client port to a socket of the processes (Linux ``/proc``).

Beside it, the bare ``eventsourcing`` library appends the same number of
one-event aggregates to another new schema of the same database, as the intake
records one ``Ticket.Opened`` per request. Each save is one transaction, made
from one thread and then from ``--clients`` threads, in a separate process.

The client, the processes and PostgreSQL share the machine's cores, so the
figures are for comparing the runs, not for sizing a deployment.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shlex
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from pathlib import Path
from typing import Any

from intake_load import drive_intake, wait_until_up

ROOT = Path(__file__).resolve().parent.parent
BIN = Path(sys.executable).parent
POSTGRES_URL = "postgresql://postgres@127.0.0.1:5432/test"


# The database.


def connect(schema: str | None = None) -> Any:
    import psycopg

    options = f"-c search_path={schema}" if schema else ""
    return psycopg.connect(POSTGRES_URL, autocommit=True, options=options)


def create_schema(prefix: str) -> str:
    schema = f"{prefix}_{uuid.uuid4().hex[:10]}"
    with connect() as connection:
        connection.execute(f'CREATE SCHEMA "{schema}"')
    return schema


def drop_schema(schema: str) -> None:
    with connect() as connection:
        connection.execute(f'DROP SCHEMA "{schema}" CASCADE')


def client_ports() -> list[int]:
    """Return the client ports of the other sessions on the test database."""
    with connect() as connection:
        rows = connection.execute(
            "SELECT client_port FROM pg_stat_activity WHERE datname = current_database()"
            " AND pid <> pg_backend_pid() AND client_port IS NOT NULL"
        ).fetchall()
    return [int(row[0]) for row in rows]


def socket_owners(pids: list[int]) -> dict[int, int]:
    """Map the local TCP ports of ``pids``' connections to PostgreSQL (port 5432) to their pid.

    Reads Linux's /proc/net/tcp for each socket's inode and /proc/PID/fd for the owner.
    """
    port_of_inode = {}
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        for line in Path(table).read_text().splitlines()[1:]:
            fields = line.split()
            if int(fields[2].rsplit(":", 1)[1], 16) == 5432:
                port_of_inode[f"socket:[{fields[9]}]"] = int(fields[1].rsplit(":", 1)[1], 16)
    owners = {}
    for pid in pids:
        try:
            descriptors = list(Path(f"/proc/{pid}/fd").iterdir())
        except OSError:
            continue
        for descriptor in descriptors:
            try:
                target = os.readlink(descriptor)
            except OSError:
                continue
            if target in port_of_inode:
                owners[port_of_inode[target]] = pid
    return owners


def children(pid: int) -> list[int]:
    try:
        return [int(child) for child in Path(f"/proc/{pid}/task/{pid}/children").read_text().split()]
    except OSError:
        return []


# The processes.


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def procfile_command(name: str, env: dict[str, str]) -> list[str]:
    """Return a Procfile command as arguments, with ``${NAME:-default}`` expanded from ``env``."""
    for line in (ROOT / "Procfile").read_text().splitlines():
        if line.startswith(f"{name}:"):
            command = line.partition(":")[2]
            break
    else:
        raise SystemExit(f"the Procfile has no {name!r} process type")

    def substitute(match: re.Match[str]) -> str:
        return env.get(match.group(1)) or match.group(2) or ""

    arguments = shlex.split(re.sub(r"\$\{(\w+)(?::-([^}]*))?\}", substitute, command))
    if (BIN / arguments[0]).exists():
        arguments[0] = str(BIN / arguments[0])
    return arguments


def start(arguments: list[str], env: dict[str, str], log_path: Path) -> subprocess.Popen[bytes]:
    with open(log_path, "wb") as log:
        return subprocess.Popen(
            arguments, cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True
        )


def stop(process: subprocess.Popen[bytes]) -> None:
    try:
        os.killpg(process.pid, signal.SIGTERM)
        process.wait(timeout=30)
    except ProcessLookupError:
        return
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, signal.SIGKILL)
        process.wait()


def hub(env: dict[str, str], *arguments: str) -> str:
    result = subprocess.run(
        [str(BIN / "hub"), *arguments], cwd=ROOT, env=env, capture_output=True, text=True, check=False
    )
    if result.returncode != 0:
        raise SystemExit(f"hub {' '.join(arguments)} failed: {result.stderr.strip()}")
    return result.stdout


# The intake.


def lag(schema: str) -> tuple[int, int]:
    """Return the head position and how many events the furthest-behind view still has to apply."""
    with connect(schema) as connection:
        head = connection.execute("SELECT COALESCE(MAX(notification_id), 0) FROM hub_events").fetchone()[0]
        low = connection.execute("SELECT MIN(position) FROM projection_positions").fetchone()[0]
    return int(head), int(head) - int(low)


def run_topology(web_count: int, args: argparse.Namespace, folder: Path) -> dict[str, Any]:
    schema = create_schema("bench_topology")
    env = {name: value for name, value in os.environ.items() if not name.startswith(("HUB_", "POSTGRES_"))}
    env.update({
        "HUB_DATABASE_URL": POSTGRES_URL, "HUB_POSTGRES_SCHEMA": schema, "HUB_CREATE_TABLE": "n",
        "HUB_CIPHER_KEY": hub(env, "keys", "generate").strip(), "WEB_CONCURRENCY": str(args.web_concurrency),
    })
    env.update(args.env)
    processes: list[subprocess.Popen[bytes]] = []
    worker: list[subprocess.Popen[bytes]] = []
    # Most connections seen at once: of all these processes, of one gunicorn worker, of the hub worker.
    peak = {"total": 0, "web_worker": 0, "hub_worker": 0}
    sampling = threading.Event()

    def sample_connections() -> None:
        while not sampling.wait(0.1):
            web_workers = [child for process in processes[:web_count] for child in children(process.pid)]
            hub_worker = worker[0].pid if worker else -1
            owners = socket_owners([*web_workers, hub_worker])
            counts: dict[int, int] = {}
            for port in client_ports():
                if port in owners:
                    counts[owners[port]] = counts.get(owners[port], 0) + 1
            peak["total"] = max(peak["total"], sum(counts.values()))
            peak["web_worker"] = max([peak["web_worker"], *(counts.get(pid, 0) for pid in web_workers)])
            peak["hub_worker"] = max(peak["hub_worker"], counts.get(hub_worker, 0))

    sampler = threading.Thread(target=sample_connections, daemon=True)
    try:
        hub(env, "db", "init")
        token = hub(env, "tokens", "create", "--role", "integration", "--name", "bench").strip().splitlines()[-1]
        headers = {"Content-Type": "application/json", "Authorization": f"Bearer {token}"}
        ports = [free_port() for _ in range(web_count)]
        for number, port in enumerate(ports):
            arguments = procfile_command("web", {**env, "PORT": str(port)})
            arguments[arguments.index("--bind") + 1] = f"127.0.0.1:{port}"
            arguments += ["--control-socket", str(folder / f"web{number}.ctl")]
            processes.append(start(arguments, env, folder / f"web{number}.log"))
        if not args.worker_after_intake:
            worker.append(start(procfile_command("worker", env), env, folder / "worker.log"))
        for number, port in enumerate(ports):
            wait_until_up(port, processes[number], folder / f"web{number}.log")
        sampler.start()

        drive_intake(ports, headers, args.warmup, args.clients)
        intake = drive_intake(ports, headers, args.requests, args.clients)
        ended = time.perf_counter()
        head, behind = lag(schema)
        if args.worker_after_intake:
            worker.append(start(procfile_command("worker", env), env, folder / "worker.log"))
        while True:
            _, remaining = lag(schema)
            if remaining == 0:
                break
            if time.perf_counter() - ended > 600:
                raise SystemExit(f"the views did not catch up within 600 s; see {folder / 'worker.log'}")
            time.sleep(0.02)
        catch_up = time.perf_counter() - ended
    finally:
        sampling.set()
        for process in processes + worker:
            stop(process)
        drop_schema(schema)
    return {
        "web_processes": web_count, **intake, "events": head, "lag_at_end": behind,
        "catch_up_seconds": catch_up, "peak_connections": peak,
    }


# The bare library.


RAW_SCRIPT = """
import json, sys, time
from concurrent.futures import ThreadPoolExecutor
from eventsourcing.application import Application
from eventsourcing.domain import Aggregate

class Request(Aggregate):
    def __init__(self, subject, channel, description):
        self.subject = subject
        self.channel = channel
        self.description = description

class Raw(Application):
    name = "raw"

count, threads, schema = int(sys.argv[1]), int(sys.argv[2]), sys.argv[3]
app = Raw(env={
    "PERSISTENCE_MODULE": "eventsourcing.postgres", "POSTGRES_DBNAME": "test", "POSTGRES_HOST": "127.0.0.1",
    "POSTGRES_PORT": "5432", "POSTGRES_USER": "postgres", "POSTGRES_PASSWORD": "", "POSTGRES_SCHEMA": schema,
    "POSTGRES_POOL_SIZE": str(threads), "POSTGRES_MAX_OVERFLOW": "0",
})

def save(number):
    app.save(Request(f"Benchmark ticket {number}", "web", "The export to the accounting system fails with a timeout."))

for number in range(min(100, count)):
    save(-number - 1)
started = time.perf_counter()
with ThreadPoolExecutor(threads) as pool:
    list(pool.map(save, range(count)))
elapsed = time.perf_counter() - started
print(json.dumps({"threads": threads, "events": count, "events_per_second": count / elapsed}))
app.close()
"""


def run_raw(count: int, threads: int) -> dict[str, Any]:
    schema = create_schema("bench_raw")
    try:
        output = subprocess.run(
            [sys.executable, "-c", RAW_SCRIPT, str(count), str(threads), schema],
            env={name: value for name, value in os.environ.items() if not name.startswith(("HUB_", "POSTGRES_", "RAW_"))},
            capture_output=True, text=True, check=True,
        )
    finally:
        drop_schema(schema)
    return json.loads(output.stdout.strip().splitlines()[-1])


def setting_argument(text: str) -> tuple[str, str]:
    name, separator, value = text.partition("=")
    if not separator or not name:
        raise argparse.ArgumentTypeError(f"{text!r} is invalid; use NAME=VALUE")
    return name, value


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--web-processes", type=int, nargs="+", default=[1, 2], help="web process counts to measure, one run each (default: 1 2)")
    parser.add_argument("--web-concurrency", type=int, default=4, help="gunicorn workers per web process (default: 4, as in the Procfile)")
    parser.add_argument("--requests", type=int, default=2000, help="measured requests per run (default: 2000)")
    parser.add_argument("--warmup", type=int, default=200, help="requests sent before measuring (default: 200)")
    parser.add_argument("--clients", type=int, default=16, help="concurrent client connections (default: 16)")
    parser.add_argument(
        "--worker-after-intake", action="store_true",
        help="start the hub worker after the last response instead of before the intake",
    )
    parser.add_argument(
        "--env", type=setting_argument, action="append", default=[], metavar="NAME=VALUE",
        help="an extra setting for every process, such as HUB_POSTGRES_POOL_SIZE=4 (repeatable)",
    )
    parser.add_argument("--output", type=Path, help="also write the figures to this JSON file")
    args = parser.parse_args()

    runs = []
    with tempfile.TemporaryDirectory(prefix="hub-bench-topology-") as temporary:
        for web_count in args.web_processes:
            runs.append(run_topology(web_count, args, Path(temporary)))
    raw = [run_raw(args.requests, threads) for threads in (1, args.clients)]

    print(f"PostgreSQL at {POSTGRES_URL}; {os.cpu_count()} CPUs shared by the client, the processes and the server")
    if args.env:
        print("settings: " + " ".join(f"{name}={value}" for name, value in args.env))
    when = "started after the intake" if args.worker_after_intake else "running during the intake"
    print(f"web processes of {args.web_concurrency} gunicorn workers (4 threads each); 1 hub worker {when}; "
          f"{args.clients} clients; {args.requests} requests per run after {args.warmup} warm-up")
    print(f"{'web':>3} {'req/s':>7} {'p50 ms':>7} {'p99 ms':>7} {'errors':>6} {'lag at end':>10} "
          f"{'catch-up s':>10} {'conns':>5} {'per web worker':>14} {'hub worker':>10}")
    for run in runs:
        peak = run["peak_connections"]
        print(
            f"{run['web_processes']:>3} {run['requests_per_second']:>7.0f} {run['p50_ms']:>7.1f} "
            f"{run['p99_ms']:>7.1f} {run['errors']:>6} {run['lag_at_end']:>10} "
            f"{run['catch_up_seconds']:>10.2f} {peak['total']:>5} {peak['web_worker']:>14} {peak['hub_worker']:>10}"
        )
    for row in raw:
        print(f"raw eventsourcing appends, {row['threads']:>2} threads: {row['events_per_second']:.0f} events/s")
    if args.output:
        args.output.write_text(json.dumps({"runs": runs, "raw": raw}, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
