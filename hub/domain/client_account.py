"""Client accounts: the organization a requester belongs to, its contacts and NPS."""

from __future__ import annotations

from typing import Any
from uuid import UUID

from hub.domain.base import Context, ServiceAggregate
from hub.domain.errors import InvalidValueError, StateConflictError
from hub.domain.vocabulary import NPS_RANGE, require_text


class ClientAccount(ServiceAggregate):
    """An organization served by the hub."""

    class Registered(ServiceAggregate.Created):
        organization: str
        external: dict[str, Any] | None

        def apply(self, account: ClientAccount) -> None:
            account.organization = self.organization
            account.external = self.external
            account.contacts = []
            account.nps_responses = []

    class Renamed(ServiceAggregate.Event):
        organization: str

        def apply(self, account: ClientAccount) -> None:
            account.organization = self.organization

    class ContactAdded(ServiceAggregate.Event):
        contact: dict[str, Any]

        def apply(self, account: ClientAccount) -> None:
            account.contacts = [*account.contacts, self.contact]

    class NpsResponded(ServiceAggregate.Event):
        score: int
        contact_id: str | None
        comment: str | None

        def apply(self, account: ClientAccount) -> None:
            account.nps_responses = [
                *account.nps_responses,
                {"score": self.score, "contact_id": self.contact_id, "at": self.occurred_at},
            ]

    @classmethod
    def register(
        cls, ctx: Context, *, account_id: UUID, organization: str,
        external: dict[str, Any] | None = None,
    ) -> ClientAccount:
        require_text("organization", organization, max_length=500)
        return cls._create(
            cls.Registered, id=account_id, **ctx.event_fields(),
            organization=organization, external=external,
        )

    def rename(self, ctx: Context, organization: str) -> None:
        require_text("organization", organization, max_length=500)
        self._record(self.Renamed, ctx, organization=organization)

    def add_contact(self, ctx: Context, contact: dict[str, Any]) -> None:
        contact_id = contact.get("id")
        require_text("contact.id", contact_id, max_length=200)
        if any(existing["id"] == contact_id for existing in self.contacts):
            msg = f"client account {self.id} already has a contact with id {contact_id!r}"
            raise StateConflictError(self.id, "contact exists", msg)
        self._record(self.ContactAdded, ctx, contact=dict(contact))

    def record_nps(
        self, ctx: Context, score: int, contact_id: str | None = None, comment: str | None = None
    ) -> None:
        low, high = NPS_RANGE
        if isinstance(score, bool) or not isinstance(score, int) or not low <= score <= high:
            msg = f"score {score!r} is outside the NPS scale; use a whole number from {low} to {high}"
            raise InvalidValueError("score", msg)
        self._record(self.NpsResponded, ctx, score=score, contact_id=contact_id, comment=comment)

    def state(self) -> dict[str, Any]:
        return {
            "id": str(self.id), "version": self.version, "organization": self.organization,
            "external": self.external, "contacts": list(self.contacts),
            "nps_responses": list(self.nps_responses),
            "created_at": self.created_at, "updated_at": self.updated_at,
        }
