"""``/api/v1/client-accounts``: client accounts, their contacts and NPS responses."""

from __future__ import annotations

from typing import Any
from uuid import UUID

from flask import Response

from hub.domain import ClientAccount, Context
from hub.web.auth import WRITE_RECORDS
from hub.web.blueprint import ApiBlueprint
from hub.web.records import add_read_routes
from hub.web.schemas import (
    ClientAccountCreateSchema,
    ClientAccountSchema,
    ContactSchema,
    CreateHeadersSchema,
    NpsSchema,
    RenameSchema,
)
from hub.web.services import services
from hub.web.writes import CommandRoute, add_command_routes, arguments_of, method, run_create


def add_contact(body: dict[str, Any], ctx: Context) -> tuple[str, dict[str, Any]]:
    return "add_contact", {"contact": arguments_of(body)}


ACCOUNT_COMMANDS = (
    CommandRoute("rename", RenameSchema, method("rename"), "Rename the client account"),
    CommandRoute("contacts", ContactSchema, add_contact, "Add a contact"),
    CommandRoute(
        "nps-responses", NpsSchema, method("record_nps"), "Record an NPS response",
        "A score from 0 to 10; NPS is the percentage of promoters (9-10) minus that of detractors (0-6).",
    ),
)


def create_blueprint() -> ApiBlueprint:
    blp = ApiBlueprint(
        "client-accounts", __name__, url_prefix="/api/v1/client-accounts",
        description="Client accounts: the organizations served, their contacts and NPS responses.",
    )
    account_schema = ClientAccountSchema()

    @blp.route("", methods=["POST"], endpoint="register")
    @blp.requires(WRITE_RECORDS)
    @blp.arguments(CreateHeadersSchema, location="headers")
    @blp.arguments(ClientAccountCreateSchema)
    @blp.response(201, ClientAccountSchema)
    @blp.alt_response(200, schema=ClientAccountSchema, description="The account of this external record already exists.", success=True)
    @blp.doc(
        summary="Register a client account",
        description="An account from an external record is registered once: a repeat returns 200 with it.",
    )
    def register(headers: dict[str, Any], body: dict[str, Any]) -> Response:
        application = services().application
        external = body.get("external")

        def create(ctx: Context, account_id: UUID | None) -> Any:
            return application.register_client_account(
                ctx, account_id=account_id, organization=body["organization"], external=external
            )

        return run_create(
            ClientAccount, create, headers, body, account_schema,
            lambda account_id: f"/api/v1/client-accounts/{account_id}", external=external,
        )

    add_read_routes(blp, ClientAccount, "account_id", account_schema, "client account")
    add_command_routes(blp, ClientAccount, "account_id", account_schema, ACCOUNT_COMMANDS, WRITE_RECORDS)
    return blp
