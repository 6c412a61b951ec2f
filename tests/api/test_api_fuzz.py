"""A property-based fuzz of the whole API, generated from its own OpenAPI document.

Schemathesis sends valid and invalid requests to every operation and checks
that none gets a 5xx and that every response matches the documented status
codes, content type, headers and schema. Half of the cases address an
existing ticket, so commands get past the 404 and reach the aggregates.
"""

from __future__ import annotations

import hashlib

import pytest
import schemathesis
from hypothesis import HealthCheck, settings
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_headers_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from tests.api.conftest import bearer, build_app, hub_of, open_ticket

CHECKS = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_headers_conformance,
    response_schema_conformance,
]

# One app for the whole module: schemathesis needs the schema at collection time.
_DATABASE = None
_APP = None


def fuzz_app():
    global _APP, _DATABASE
    if _APP is None:
        import tempfile

        _DATABASE = tempfile.TemporaryDirectory(prefix="hub-fuzz-")
        _APP = build_app(f"sqlite:///{_DATABASE.name}/hub.sqlite3")
    return _APP


schema = schemathesis.openapi.from_wsgi("/openapi.json", fuzz_app())


@pytest.fixture(scope="module")
def admin_headers():
    app = fuzz_app()
    _, secret = hub_of(app).tokens.create("admin", "fuzz")
    headers = bearer(secret)
    client = app.test_client()
    existing = {"ticket_id": open_ticket(client, headers)["id"]}
    yield headers, existing
    hub_of(app).close()


@schema.parametrize()
@settings(max_examples=25, deadline=None, suppress_health_check=list(HealthCheck))
def test_api_fuzz(case, admin_headers):
    headers, existing = admin_headers
    for name, value in existing.items():
        if case.path_parameters and name in case.path_parameters:
            digest = hashlib.sha256(repr(case.body).encode()).digest()
            if digest[0] % 2 == 0:
                case.path_parameters[name] = value
    case.call_and_validate(headers=headers, checks=CHECKS)
