"""``/api/v1/knowledge-articles``: articles used to resolve tickets."""

from __future__ import annotations

from typing import Any
from uuid import UUID

from flask import Response

from hub.domain import Context, KnowledgeArticle
from hub.web.auth import WRITE_RECORDS
from hub.web.blueprint import ApiBlueprint
from hub.web.records import add_read_routes
from hub.web.schemas import (
    ArticleCreateSchema,
    ArticleRetireSchema,
    ArticleRevisionSchema,
    ArticleSchema,
    CreateHeadersSchema,
)
from hub.web.services import services
from hub.web.writes import CommandRoute, add_command_routes, method, run_create

ARTICLE_COMMANDS = (
    CommandRoute(
        "revisions", ArticleRevisionSchema, method("revise"), "Revise the article",
        "A new title, a new body or both; what is not sent stays as it was.",
    ),
    CommandRoute("retire", ArticleRetireSchema, method("retire"), "Retire the article"),
)


def create_blueprint() -> ApiBlueprint:
    blp = ApiBlueprint(
        "knowledge-articles", __name__, url_prefix="/api/v1/knowledge-articles",
        description="Knowledge articles: procedures and answers for common issues.",
    )
    article_schema = ArticleSchema()

    @blp.route("", methods=["POST"], endpoint="publish")
    @blp.requires(WRITE_RECORDS)
    @blp.arguments(CreateHeadersSchema, location="headers")
    @blp.arguments(ArticleCreateSchema)
    @blp.response(201, ArticleSchema)
    @blp.doc(summary="Publish an article")
    def publish(headers: dict[str, Any], body: dict[str, Any]) -> Response:
        application = services().application

        def create(ctx: Context, article_id: UUID | None) -> Any:
            return application.publish_article(
                ctx, article_id=article_id, title=body["title"], body=body["body"], tags=body["tags"]
            )

        return run_create(
            KnowledgeArticle, create, headers, body, article_schema,
            lambda article_id: f"/api/v1/knowledge-articles/{article_id}",
        )

    add_read_routes(blp, KnowledgeArticle, "article_id", article_schema, "knowledge article")
    add_command_routes(blp, KnowledgeArticle, "article_id", article_schema, ARTICLE_COMMANDS, WRITE_RECORDS)
    return blp
