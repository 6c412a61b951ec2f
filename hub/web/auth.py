"""Bearer API tokens and what each role may do.

Roles: admin (everything), integration (connected tools: write records, read
everything including the event stream), agent (write records, read records,
history and views), analyst (read records and views) and auditor (read records,
history and the event stream).
"""

from __future__ import annotations

import logging

from flask import g, request

from hub.web.errors import ApiError
from hub.web.services import services
from hub.web.storage import ApiToken

logger = logging.getLogger(__name__)

# Permissions that views require.
READ_RECORDS = "records:read"
WRITE_RECORDS = "records:write"
READ_HISTORY = "history:read"
READ_STREAM = "stream:read"
READ_VIEWS = "views:read"
MANAGE_POLICIES = "policies:write"

ROLE_PERMISSIONS: dict[str, frozenset[str]] = {
    "integration": frozenset({READ_RECORDS, WRITE_RECORDS, READ_HISTORY, READ_STREAM, READ_VIEWS}),
    "agent": frozenset({READ_RECORDS, WRITE_RECORDS, READ_HISTORY, READ_VIEWS}),
    "analyst": frozenset({READ_RECORDS, READ_VIEWS}),
    "auditor": frozenset({READ_RECORDS, READ_HISTORY, READ_STREAM}),
}

# The actor kind recorded for a write that names no actor, by token role.
ROLE_ACTOR_KINDS = {"admin": "agent", "agent": "agent", "integration": "integration"}

AUTHENTICATE_HEADER = 'Bearer realm="hub"'


def role_allows(role: str, permission: str) -> bool:
    """Tell whether a role has a permission; admin has every permission, including new ones."""
    if role == "admin":
        return True
    return permission in ROLE_PERMISSIONS.get(role, frozenset())


def authenticate() -> ApiToken:
    """Return the request's API token, or raise a 401 ApiError."""
    header = request.headers.get("Authorization", "")
    scheme, _, secret = header.partition(" ")
    if not header:
        raise ApiError(
            401, "unauthorized",
            "missing API token; send 'Authorization: Bearer <token>' (create one with 'hub tokens create')",
            headers={"WWW-Authenticate": AUTHENTICATE_HEADER},
        )
    if scheme.lower() != "bearer" or not secret.strip():
        raise ApiError(
            401, "unauthorized", "the Authorization header must have the form 'Bearer <token>'",
            headers={"WWW-Authenticate": AUTHENTICATE_HEADER},
        )
    token = services().tokens.verify(secret.strip())
    if token is None:
        logger.info("Rejected an invalid or revoked API token on %s %s", request.method, request.path)
        raise ApiError(
            401, "unauthorized", "the API token is invalid or revoked",
            headers={"WWW-Authenticate": f'{AUTHENTICATE_HEADER}, error="invalid_token"'},
        )
    return token


def authorize(permission: str) -> ApiToken:
    """Authenticate the request and check the token's role; raise 401 or 403 as an ApiError."""
    token = authenticate()
    if not role_allows(token.role, permission):
        raise ApiError(
            403, "forbidden",
            f"the {token.role} role may not do this ({permission}); use a token with a role that may",
        )
    g.api_token = token
    return token


def current_token() -> ApiToken:
    """Return the token that authorized the current request."""
    return g.api_token
