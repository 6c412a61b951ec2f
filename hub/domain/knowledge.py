"""Knowledge articles used to resolve tickets."""

from __future__ import annotations

from typing import Any
from uuid import UUID

from hub.domain.base import Context, ServiceAggregate
from hub.domain.errors import StateConflictError
from hub.domain.vocabulary import require_text


class KnowledgeArticle(ServiceAggregate):
    """A published procedure or answer to a common issue."""

    class Published(ServiceAggregate.Created):
        title: str
        body: str
        tags: list[str]

        def apply(self, article: KnowledgeArticle) -> None:
            article.title = self.title
            article.body = self.body
            article.tags = list(self.tags)
            article.revision = 1
            article.retired = False

    class Revised(ServiceAggregate.Event):
        title: str
        body: str

        def apply(self, article: KnowledgeArticle) -> None:
            article.title = self.title
            article.body = self.body
            article.revision += 1

    class Retired(ServiceAggregate.Event):
        reason: str | None

        def apply(self, article: KnowledgeArticle) -> None:
            article.retired = True

    @classmethod
    def publish(
        cls, ctx: Context, *, article_id: UUID, title: str, body: str, tags: list[str] | None = None
    ) -> KnowledgeArticle:
        require_text("title", title, max_length=500)
        require_text("body", body, max_length=200_000)
        return cls._create(
            cls.Published, id=article_id, **ctx.event_fields(), title=title, body=body, tags=list(tags or [])
        )

    def revise(self, ctx: Context, title: str | None = None, body: str | None = None) -> None:
        self._check_not_retired("revise")
        title = title or self.title
        body = body or self.body
        require_text("title", title, max_length=500)
        require_text("body", body, max_length=200_000)
        self._record(self.Revised, ctx, title=title, body=body)

    def retire(self, ctx: Context, reason: str | None = None) -> None:
        self._check_not_retired("retire")
        self._record(self.Retired, ctx, reason=reason)

    def _check_not_retired(self, action: str) -> None:
        if self.retired:
            msg = f"cannot {action} knowledge article {self.id}: it is retired"
            raise StateConflictError(self.id, "retired", msg)

    def state(self) -> dict[str, Any]:
        return {
            "id": str(self.id), "version": self.version, "title": self.title, "body": self.body,
            "tags": list(self.tags), "revision": self.revision, "retired": self.retired,
            "created_at": self.created_at, "updated_at": self.updated_at,
        }
