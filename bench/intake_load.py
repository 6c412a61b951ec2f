"""The HTTP load both intake benchmarks use: a health wait and a threaded intake client."""

from __future__ import annotations

import http.client
import json
import statistics
import subprocess
import threading
import time
from pathlib import Path
from typing import Any

HEALTH_TIMEOUT_SECONDS = 60


def wait_until_up(port: int, process: subprocess.Popen, log_path: Path) -> None:
    """Wait until ``GET /healthz`` on ``port`` returns 200. Exit if the process ends or 60 s pass."""
    deadline = time.monotonic() + HEALTH_TIMEOUT_SECONDS
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise SystemExit(f"the server on port {port} exited with {process.returncode}; see {log_path}")
        try:
            connection = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
            connection.request("GET", "/healthz")
            if connection.getresponse().status == 200:
                connection.close()
                return
        except OSError:
            pass
        time.sleep(0.1)
    raise SystemExit(f"the server on port {port} did not respond to /healthz within {HEALTH_TIMEOUT_SECONDS} s; see {log_path}")


def drive_intake(ports: list[int], headers: dict[str, str], total: int, clients: int) -> dict[str, Any]:
    """Send ``total`` intake requests from ``clients`` threads spread over ``ports``.

    Returns the request rate, the error count and kinds, and the p50 and p99
    latencies in milliseconds (None with fewer than two requests).
    """
    latencies: list[float] = []
    errors: list[str] = []
    lock = threading.Lock()
    numbers = iter(range(total))

    def client(client_number: int) -> None:
        port = ports[client_number % len(ports)]
        connection = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
        own: list[float] = []
        while True:
            with lock:
                number = next(numbers, None)
            if number is None:
                break
            body = json.dumps({
                "subject": f"Benchmark ticket {client_number}-{number}",
                "channel": "web",
                "requester": {"id": f"requester-{number % 97}"},
                "description": "The export to the accounting system fails with a timeout.",
            })

            started = time.perf_counter()
            try:
                connection.request("POST", "/api/v1/tickets", body=body, headers=headers)
                response = connection.getresponse()
                response.read()
            except (OSError, http.client.HTTPException) as error:
                with lock:
                    errors.append(type(error).__name__)
                connection.close()
                connection = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
                continue
            own.append(time.perf_counter() - started)
            if response.status != 201:
                with lock:
                    errors.append(str(response.status))
        connection.close()
        with lock:
            latencies.extend(own)

    threads = [threading.Thread(target=client, args=(number,)) for number in range(clients)]
    started = time.perf_counter()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    elapsed = time.perf_counter() - started

    cuts = statistics.quantiles(latencies, n=100) if len(latencies) > 1 else None
    return {
        "requests": len(latencies),
        "errors": len(errors),
        "error_kinds": sorted(set(errors)),
        "seconds": elapsed,
        "requests_per_second": len(latencies) / elapsed if elapsed else 0.0,
        "p50_ms": 1000 * cuts[49] if cuts else None,
        "p99_ms": 1000 * cuts[98] if cuts else None,
    }
