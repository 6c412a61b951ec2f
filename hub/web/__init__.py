"""The hub's HTTP API: ``create_app`` builds the Flask application.

Under gunicorn, ``hub.web:create_app()`` runs in each worker after the fork,
so every worker opens its own connection pool. ``hub serve`` runs the same
application in one process with the projections on a background thread.

Other packages add endpoints by listing a blueprint factory in
``BLUEPRINT_FACTORIES``: a ``"module:function"`` whose function takes no
arguments and returns a blueprint. A :class:`hub.web.blueprint.ApiBlueprint`
(or any flask-smorest blueprint) appears in the OpenAPI document; its views
check tokens with ``@blp.requires(permission)``.
"""

from __future__ import annotations

import importlib
import logging
import os
from collections.abc import Callable, Mapping
from typing import Any

import flask_smorest
from flask import Flask, Response, request, send_from_directory

from hub.application import create_application
from hub.settings import load_settings, read_flag
from hub.web.errors import ApiError, ErrorSchema, register_error_handlers
from hub.web.services import EXTENSION_NAME, Services
from hub.web.storage import IdempotencyStore, SqlTables, TokenStore, setup_lock

logger = logging.getLogger(__name__)

API_VERSION = "1.0.0"

# Request bodies above this size get 413; the largest domain text (a knowledge
# article body) is 200,000 characters, which fits with room to spare.
MAX_CONTENT_LENGTH = 1024 * 1024

BLUEPRINT_FACTORIES: list[str] = [
    "hub.web.health:create_blueprint",
    "hub.web.tickets:create_blueprint",
    "hub.web.sla_policies:create_blueprint",
    "hub.web.accounts:create_blueprint",
    "hub.web.problems:create_blueprint",
    "hub.web.improvements:create_blueprint",
    "hub.web.knowledge:create_blueprint",
    "hub.web.views:create_blueprint",
    "hub.web.stream:create_blueprint",
    "webhooks.api:create_blueprint",
    "hub.web.pages:create_blueprint",
    "connectors.api:create_blueprint",
]

DEFAULT_CONFIG: dict[str, Any] = {
    # None reads HUB_DATABASE_URL (see hub.settings).
    "DATABASE_URL": None,
    # Extra persistence settings for the event store, such as POSTGRES_SCHEMA.
    "PERSISTENCE_ENV": {},
    # Run the projections on a thread in this process (the embedded mode). None
    # reads HUB_RUN_PROJECTIONS; gunicorn workers leave it off and a separate
    # "hub worker" process keeps the views up to date.
    "RUN_PROJECTIONS": None,
    "PROJECTION_POLL_INTERVAL": 0.5,
    "MAX_CONTENT_LENGTH": MAX_CONTENT_LENGTH,
    "API_TITLE": "Service hub API",
    "API_VERSION": API_VERSION,
    "OPENAPI_VERSION": "3.0.3",
    "OPENAPI_URL_PREFIX": "/",
    "OPENAPI_JSON_PATH": "openapi.json",
    "OPENAPI_SWAGGER_UI_PATH": "docs",
    "OPENAPI_SWAGGER_UI_URL": "/docs/assets/",
    "API_SPEC_OPTIONS": {
        "info": {
            "description": "Every change the hub records is an event with who, when and from where. "
            "Write through the commands, read any ticket at any past version, follow the global "
            "event stream, and query the KPI, SLA, escalation and PDCA views. Authenticate with "
            "'Authorization: Bearer <token>' (create tokens with 'hub tokens create'). Errors are "
            '{"error": {"code", "message", "fields"}}.'
        },
        "security": [{"bearerAuth": []}],
        "components": {
            "securitySchemes": {
                "bearerAuth": {"type": "http", "scheme": "bearer", "description": "An API token."}
            }
        },
    },
}


class HubApi(flask_smorest.Api):
    """flask-smorest's Api with the hub's error body in the OpenAPI document."""

    ERROR_SCHEMA = ErrorSchema


def load_factory(path: str) -> Callable[[], Any]:
    module_name, _, function_name = path.partition(":")
    return getattr(importlib.import_module(module_name), function_name)


def create_app(test_config: Mapping[str, Any] | None = None) -> Flask:
    """Build the API application.

    ``test_config`` overrides the configuration, for example
    ``{"DATABASE_URL": "sqlite:////tmp/hub.sqlite3", "RUN_PROJECTIONS": False}``.
    """
    app = Flask(__name__)
    app.json.sort_keys = False  # type: ignore[attr-defined]
    app.config.from_mapping(DEFAULT_CONFIG)
    if test_config:
        app.config.update(test_config)

    hub = build_services(app.config)
    app.extensions[EXTENSION_NAME] = hub

    api = HubApi(app)
    for path in BLUEPRINT_FACTORIES:
        blueprint = load_factory(path)()
        if isinstance(blueprint, flask_smorest.Blueprint):
            api.register_blueprint(blueprint)
        else:
            app.register_blueprint(blueprint)
    register_docs_assets(app)
    register_error_handlers(app)
    register_request_hooks(app)
    logger.info(
        "API ready on the %s store; projections %s",
        hub.settings.store, "in-process" if hub.background_runner else "in another process",
    )
    return app


def build_services(config: Mapping[str, Any]) -> Services:
    """Open the event store, the API tables and the projections named by an app's ``config``."""
    from projections.db import Database
    from projections.registry import all_views
    from projections.runner import ProjectionRunner, start_in_background

    environ = dict(os.environ)
    if config["DATABASE_URL"]:
        environ["HUB_DATABASE_URL"] = config["DATABASE_URL"]
    settings = load_settings(environ)
    if settings.create_tables:
        with setup_lock(settings):
            application = create_application(settings, **config["PERSISTENCE_ENV"])
            tables = SqlTables(application)
            tables.create_tables()
    else:
        # HUB_CREATE_TABLE=n: "hub db init" created every table before the deployment,
        # so workers start without DDL and without waiting for each other.
        application = create_application(settings, **config["PERSISTENCE_ENV"])
        tables = SqlTables(application)

    views = all_views()
    database = Database.for_application(application)
    run_projections = config["RUN_PROJECTIONS"]
    if run_projections is None:
        run_projections = read_flag(environ, "HUB_RUN_PROJECTIONS")
    background = None
    if run_projections:
        background = start_in_background(
            application, views, db=database, poll_interval=config["PROJECTION_POLL_INTERVAL"],
            create_tables=settings.create_tables,
        )
        runner = background.runner
    else:
        runner = ProjectionRunner(application, views, database, create_tables=settings.create_tables)
        runner.setup()

    return Services(
        settings=settings,
        application=application,
        tables=tables,
        tokens=TokenStore(tables),
        idempotency=IdempotencyStore(tables),
        projections=database,
        projection_runner=runner,
        background_runner=background,
    )


def register_docs_assets(app: Flask) -> None:
    """Serve the Swagger UI files from the swagger-ui-bundle package, so /docs works offline."""
    try:
        import swagger_ui_bundle
    except ImportError:
        logger.warning("swagger-ui-bundle is not installed, so /docs cannot load its scripts; install it")
        return

    folder = swagger_ui_bundle.swagger_ui_path

    @app.route("/docs/assets/<path:filename>", endpoint="docs_assets")
    def docs_assets(filename: str) -> Response:
        return send_from_directory(folder, filename, max_age=86400)


def register_request_hooks(app: Flask) -> None:
    @app.before_request
    def reject_nul_in_query() -> None:
        # PostgreSQL text cannot hold NUL, so such a filter could never match and
        # would fail inside the driver instead.
        for name, value in request.args.items(multi=True):
            if "\x00" in name or "\x00" in value:
                message = f"query parameter {name!r} contains a NUL character; remove it"
                raise ApiError(400, "bad_request", message, {name.replace("\x00", ""): [message]})

    @app.after_request
    def wake_projections(response: Response) -> Response:
        hub: Services = app.extensions[EXTENSION_NAME]
        if hub.background_runner is not None and request.method == "POST" and response.status_code < 300:
            hub.background_runner.wake()
        return response
