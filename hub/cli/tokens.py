"""``hub tokens``: create, list and revoke API tokens."""

from __future__ import annotations

import argparse
from typing import Any

from hub.application import create_application
from hub.cli.common import UsageError, print_rows
from hub.web.storage import ROLES, SqlTables, TokenStore


def register(subparsers: Any) -> None:
    parser = subparsers.add_parser(
        "tokens", help="create, list and revoke API tokens",
        description="API tokens authenticate HTTP requests ('Authorization: Bearer <token>'). "
        "Only a SHA-256 hash of each token is stored, so a token is shown once, when it is created.",
    )
    actions = parser.add_subparsers(dest="action", metavar="ACTION", parser_class=type(parser))
    actions.required = True

    create = actions.add_parser("create", help="create a token and print it once, on the last line")
    create.add_argument("--role", required=True, choices=ROLES, help="what the token may do")
    create.add_argument(
        "--name", help="name recorded as the actor of writes that name no actor (default: ROLE-ID)"
    )
    create.set_defaults(handler=run_create)

    listing = actions.add_parser("list", help="list tokens without their secrets")
    listing.add_argument("--format", choices=("table", "json"), default="table", help="output format (default: table)")
    listing.set_defaults(handler=run_list)

    revoke = actions.add_parser("revoke", help="revoke a token by its id")
    revoke.add_argument("token_id", metavar="TOKEN_ID", help="the id shown by 'hub tokens list'")
    revoke.set_defaults(handler=run_revoke)


def open_store() -> tuple[Any, TokenStore]:
    application = create_application()
    tables = SqlTables(application)
    tables.create_tables()
    return application, TokenStore(tables)


def run_create(args: argparse.Namespace) -> int:
    application, store = open_store()
    try:
        try:
            token, secret = store.create(args.role, args.name)
        except ValueError as error:
            raise UsageError(str(error)) from None
    finally:
        application.close()
    print(f"Created token {token.token_id} named {token.name!r} with role {token.role}.")
    print("Store it now; it is not shown again:")
    print(secret)
    return 0


def run_list(args: argparse.Namespace) -> int:
    application, store = open_store()
    try:
        tokens = store.list()
    finally:
        application.close()
    rows = [
        {"token_id": t.token_id, "name": t.name, "role": t.role, "created_at": t.created_at, "revoked_at": t.revoked_at}
        for t in tokens
    ]
    print_rows(rows, args.format, ("token_id", "name", "role", "created_at", "revoked_at"))
    return 0


def run_revoke(args: argparse.Namespace) -> int:
    application, store = open_store()
    try:
        revoked = store.revoke(args.token_id)
    finally:
        application.close()
    if not revoked:
        msg = f"no live token has the id {args.token_id!r}; see 'hub tokens list'"
        raise UsageError(msg)
    print(f"Revoked token {args.token_id}.")
    # Each server process caches tokens it has verified, so the revocation reaches it only when that entry expires.
    print(
        f"Running server processes may still accept it for up to {store.cache_seconds:g} seconds, "
        "until their cache of verified tokens expires."
    )
    return 0
