"""Benchmark ticket intake over HTTP under gunicorn, against a bare Flask endpoint.

Usage::

    python bench/api.py                      # SQLite and PostgreSQL, 3000 requests each
    python bench/api.py --stores sqlite --requests 1000

For each store, the script starts ``gunicorn 'hub.web:create_app()'`` with the
Procfile's settings (4 gthread workers, 4 threads each) on a free loopback port.
The store is a new SQLite file or a new PostgreSQL schema. ``--clients`` threads
send ``POST /api/v1/tickets``, each on its own keep-alive connection. The baseline is a bare Flask app under the same gunicorn settings
whose endpoint parses the same JSON body and returns 201 with a small JSON
object. It prints requests/s and p50/p99 latency for both and the ratio of
intake to baseline throughput.

The client runs on the same machine as the server (and PostgreSQL), so all
three share its cores; figures are for comparing, not for sizing.
The projections are not running during the intake runs, as under the
Procfile, where ``hub worker`` runs in a separate process; ``--with-worker`` starts one.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import socket
import subprocess
import sys
import tempfile
import uuid
from pathlib import Path
from typing import Any

from flask import Flask, jsonify, request

ROOT = Path(__file__).resolve().parent.parent
BIN = Path(sys.executable).parent
POSTGRES_URL = "postgresql://postgres@127.0.0.1:5432/test"
GUNICORN_OPTIONS = ["--workers", "4", "--worker-class", "gthread", "--threads", "4"]


def baseline_app() -> Flask:
    """Build a bare Flask app whose intake route parses the JSON body and returns 201 with a small object."""
    app = Flask("baseline")

    @app.post("/api/v1/tickets")
    def intake() -> Any:
        body = request.get_json()
        return jsonify({"id": str(uuid.uuid4()), "subject": body["subject"], "version": 1}), 201

    @app.get("/healthz")
    def healthz() -> Any:
        return jsonify({"status": "ok"})

    return app


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def start_server(target: str, port: int, env: dict[str, str], log_path: Path) -> subprocess.Popen:
    command = [str(BIN / "gunicorn"), target, *GUNICORN_OPTIONS, "--bind", f"127.0.0.1:{port}", "--chdir", str(ROOT)]
    log = open(log_path, "w")  # noqa: SIM115 - closed when the process ends
    return subprocess.Popen(command, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)


def stop_process(process: subprocess.Popen) -> None:
    os.killpg(process.pid, signal.SIGTERM)
    try:
        process.wait(timeout=30)
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, signal.SIGKILL)
        process.wait()


def make_token(env: dict[str, str]) -> str:
    script = (
        "from hub.application import create_application\n"
        "from hub.web.storage import SqlTables, TokenStore\n"
        "app = create_application()\n"
        "tables = SqlTables(app); tables.create_tables()\n"
        "print(TokenStore(tables).create('integration', 'bench')[1])\n"
        "app.close()\n"
    )
    output = subprocess.run([sys.executable, "-c", script], env=env, check=True, capture_output=True, text=True)
    return output.stdout.strip().splitlines()[-1]


def store_env(store: str, folder: Path) -> tuple[dict[str, str], str | None]:
    """Return the environment for a new store, and the PostgreSQL schema to drop afterwards."""
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    if store == "sqlite":
        env["HUB_DATABASE_URL"] = f"sqlite:///{folder}/hub.sqlite3"
        return env, None
    import psycopg

    schema = f"bench_api_{uuid.uuid4().hex[:10]}"
    with psycopg.connect(POSTGRES_URL, autocommit=True) as connection:
        connection.execute(f'CREATE SCHEMA "{schema}"')
    env["HUB_DATABASE_URL"] = POSTGRES_URL
    env["POSTGRES_SCHEMA"] = schema
    return env, schema


def run_server(target: str, env: dict[str, str], headers: dict[str, str], args: argparse.Namespace, folder: Path, name: str) -> dict[str, Any]:
    # Imported here because gunicorn imports this module as bench.api for the
    # baseline app, where the script's own folder is not on the import path.
    from intake_load import drive_intake, wait_until_up

    port = free_port()
    log_path = folder / f"{name}.log"
    server = start_server(target, port, env, log_path)
    worker = None
    try:
        wait_until_up(port, server, log_path)
        if args.with_worker and target.startswith("hub."):
            worker = subprocess.Popen(
                [str(BIN / "hub"), "worker"], env=env, stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL, start_new_session=True,
            )
        drive_intake([port], headers, args.warmup, args.clients)
        return drive_intake([port], headers, args.requests, args.clients)
    finally:
        if worker is not None:
            stop_process(worker)
        stop_process(server)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--stores", nargs="+", choices=("sqlite", "postgresql"), default=["sqlite", "postgresql"])
    parser.add_argument("--requests", type=int, default=3000, help="measured requests per run (default: 3000)")
    parser.add_argument("--warmup", type=int, default=200, help="requests sent before measuring (default: 200)")
    parser.add_argument("--clients", type=int, default=16, help="concurrent client connections (default: 16)")
    parser.add_argument("--with-worker", action="store_true", help="run 'hub worker' beside the API")
    parser.add_argument("--output", type=Path, help="also write the figures to this JSON file")
    args = parser.parse_args()

    results: list[dict[str, Any]] = []
    with tempfile.TemporaryDirectory(prefix="hub-bench-api-") as temporary:
        folder = Path(temporary)
        base_env = {**os.environ, "PYTHONPATH": str(ROOT)}
        baseline = run_server("bench.api:baseline_app()", base_env, {"Content-Type": "application/json"}, args, folder, "baseline")
        results.append({"store": "-", "target": "bare Flask", **baseline})
        for store in args.stores:
            env, schema = store_env(store, folder)
            try:
                token = make_token(env)
                headers = {"Content-Type": "application/json", "Authorization": f"Bearer {token}"}
                intake = run_server("hub.web:create_app()", env, headers, args, folder, f"hub-{store}")
            finally:
                if schema is not None:
                    import psycopg

                    with psycopg.connect(POSTGRES_URL, autocommit=True) as connection:
                        connection.execute(f'DROP SCHEMA "{schema}" CASCADE')
            ratio = intake["requests_per_second"] / baseline["requests_per_second"]
            results.append({"store": store, "target": "hub intake", **intake, "ratio_to_baseline": ratio})

    print(f"gunicorn {' '.join(GUNICORN_OPTIONS)}; {args.clients} client connections; "
          f"{args.requests} requests per run after {args.warmup} warm-up; {os.cpu_count()} CPUs shared by all")
    print(f"{'store':<11} {'target':<11} {'req/s':>8} {'p50 ms':>8} {'p99 ms':>8} {'errors':>7} {'ratio':>6}")
    for row in results:
        ratio = f"{row['ratio_to_baseline']:.3f}" if "ratio_to_baseline" in row else "1"
        print(
            f"{row['store']:<11} {row['target']:<11} {row['requests_per_second']:>8.0f} "
            f"{row['p50_ms']:>8.1f} {row['p99_ms']:>8.1f} {row['errors']:>7} {ratio:>6}"
        )
    if args.output:
        args.output.write_text(json.dumps(results, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
