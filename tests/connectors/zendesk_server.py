"""A Zendesk-shaped HTTP server on loopback that serves the recorded export pages.

It serves the cursor export from the recorded per_page=1 pages (the last one
served marked `end_of_stream`), lists audits per ticket, and takes ticket
updates: a comment becomes an audit with a Comment event, and any update puts
the ticket on the export page after the newest cursor, once, in its state when
that page is read, as Zendesk builds export pages.
Requests without the expected basic credentials get 401.
"""

from __future__ import annotations

import base64
import copy
import json
import re
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime, timedelta, timezone
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit

from connector_helpers import load_fixture

EXPORT_PATH = "/api/v2/incremental/tickets/cursor.json"
_AUDITS = re.compile(r"^/api/v2/tickets/(\d+)/audits\.json$")
_TICKET = re.compile(r"^/api/v2/tickets/(\d+)\.json$")


def recorded_pages(count: int) -> list[dict[str, Any]]:
    """The first `count` recorded per_page=1 export pages, the last one marked end_of_stream."""
    interactions = load_fixture("zendesk", "incremental_tickets_cursor_based.json")["interactions"]
    pages = [copy.deepcopy(item["response_body"]) for item in interactions[1:count + 1]]
    pages[-1]["end_of_stream"] = True
    return pages


class RecordedZendesk:
    """The server's state; `requests` lists (method, path, query, body) in arrival order."""

    def __init__(self, pages: list[dict[str, Any]], email: str, api_token: str) -> None:
        self.pages = pages
        self.tickets = {ticket["id"]: ticket for page in pages for ticket in page["tickets"]}
        self.audits: dict[int, list[dict[str, Any]]] = {}
        self.pending: list[int] = []
        self.cursor = pages[-1]["after_cursor"]
        self.requests: list[tuple[str, str, dict[str, list[str]], Any]] = []
        self._authorization = "Basic " + base64.b64encode(f"{email}/token:{api_token}".encode()).decode()
        self._lock = threading.Lock()
        self._next_id = 9_000_000_000_000
        self._clock = datetime(2030, 1, 1, tzinfo=timezone.utc)

    def export(self, query: dict[str, list[str]]) -> dict[str, Any]:
        if "start_time" in query:
            return self.pages[0]
        cursor = query["cursor"][0]
        for index, page in enumerate(self.pages[:-1]):
            if page["after_cursor"] == cursor:
                return self.pages[index + 1]
        if cursor != self.cursor or not self.pending:
            return {"tickets": [], "after_cursor": cursor, "before_cursor": None, "end_of_stream": True}
        tickets = [copy.deepcopy(self.tickets[ticket_id]) for ticket_id in self.pending]
        self.pending = []
        self.cursor = f"loopback-{self._new_id()}"
        return {"tickets": tickets, "after_cursor": self.cursor, "before_cursor": None, "end_of_stream": True}

    def update(self, ticket_id: int, body: dict[str, Any]) -> dict[str, Any]:
        ticket = self.tickets[ticket_id]
        changes = body["ticket"]
        self._clock += timedelta(minutes=1)
        stamp = self._clock.strftime("%Y-%m-%dT%H:%M:%SZ")
        audit = {"id": self._new_id(), "ticket_id": ticket_id, "created_at": stamp,
                 "author_id": ticket["submitter_id"], "events": [], "via": {"channel": "api"}}
        comment = changes.get("comment")
        if comment:
            audit["events"].append({"id": self._new_id(), "type": "Comment", "author_id": 424242,
                                    "body": comment["body"], "public": comment["public"], "attachments": []})
        for name, value in changes.items():
            if name != "comment":
                audit["events"].append({"id": self._new_id(), "type": "Change", "field_name": name,
                                        "value": value, "previous_value": ticket.get(name)})
                ticket[name] = value
        ticket["updated_at"] = stamp
        self.audits.setdefault(ticket_id, []).append(audit)
        if ticket_id not in self.pending:
            self.pending.append(ticket_id)
        return {"ticket": ticket, "audit": audit}

    def _new_id(self) -> int:
        self._next_id += 1
        return self._next_id

    def handle(self, method: str, path: str, query: dict[str, list[str]], body: Any, authorization: str) -> tuple[int, Any]:
        with self._lock:
            self.requests.append((method, path, query, body))
            if authorization != self._authorization:
                return 401, {"error": "Couldn't authenticate you"}
            if method == "GET" and path == EXPORT_PATH:
                return 200, self.export(query)
            audits = _AUDITS.match(path)
            if method == "GET" and audits:
                return 200, {"audits": self.audits.get(int(audits.group(1)), []), "meta": {"has_more": False}}
            ticket = _TICKET.match(path)
            if method == "PUT" and ticket and int(ticket.group(1)) in self.tickets:
                return 200, self.update(int(ticket.group(1)), body)
            return 404, {"error": "InvalidEndpoint"}


def _handler(state: RecordedZendesk) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def _respond(self, method: str) -> None:
            parts = urlsplit(self.path)
            length = int(self.headers.get("Content-Length") or 0)
            body = json.loads(self.rfile.read(length)) if length else None
            status, payload = state.handle(
                method, parts.path, parse_qs(parts.query), body, self.headers.get("Authorization", "")
            )
            data = json.dumps(payload).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json; charset=utf-8")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def do_GET(self) -> None:  # noqa: N802 (the name http.server dispatches to)
            self._respond("GET")

        def do_PUT(self) -> None:  # noqa: N802
            self._respond("PUT")

        def log_message(self, format: str, *args: Any) -> None:  # noqa: A002
            return

    return Handler


@contextmanager
def serve(state: RecordedZendesk) -> Iterator[str]:
    """Serve `state` on 127.0.0.1 with a free port; yield the base URL."""
    server = ThreadingHTTPServer(("127.0.0.1", 0), _handler(state))
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)
