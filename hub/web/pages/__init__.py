"""The dashboard: server-rendered pages for analysts, auditors and admins, under ``/``.

Pages read the same query functions as the API (``projections.queries``,
``projections.sla``, the application's history and point-in-time reads), so a
figure on a page and in the API's JSON is computed in one place. The browser
loads only files this package serves: the templates, ``static/hub.css``,
``static/hub.js`` and the vendored Chart.js build.
"""

from __future__ import annotations

import hashlib
import logging
from pathlib import Path

from flask import Blueprint, render_template, request, url_for
from flask.sansio.app import App
from werkzeug.exceptions import HTTPException

from hub.web.pages import attention, audit, improvements, overview, session, variability
from hub.web.pages.formatting import register_filters

logger = logging.getLogger(__name__)

WEB_FOLDER = Path(__file__).resolve().parent.parent
TEMPLATE_FOLDER = WEB_FOLDER / "templates"
STATIC_FOLDER = WEB_FOLDER / "static"
# The app's own /static route may serve another folder, so the dashboard's files get their own path.
STATIC_URL_PATH = "/assets"

PAGE_MODULES = (session, overview, attention, variability, audit, improvements)


def create_blueprint() -> Blueprint:
    """Build the dashboard blueprint; register it on the API's Flask app without a URL prefix."""
    blueprint = Blueprint(
        "pages", __name__,
        template_folder=str(TEMPLATE_FOLDER),
        static_folder=str(STATIC_FOLDER),
        static_url_path=STATIC_URL_PATH,
    )
    for module in PAGE_MODULES:
        module.add_routes(blueprint)
    blueprint.register_error_handler(Exception, error_page)
    blueprint.record_once(lambda state: configure_app(state.app))
    return blueprint


def error_page(error: Exception) -> tuple[str, int]:
    """Render a failure in a page as HTML. The API's handlers return JSON, which a browser shows raw."""
    if isinstance(error, HTTPException):
        status = error.code or 500
        return render_template("error.html", status=status, title=error.name, message=error.description), status
    logger.exception("Dashboard page %s failed", request.path)
    message = "The page failed to load; the error has been logged. Try again, or pick another period."
    return render_template("error.html", status=500, title="Server error", message=message), 500


def configure_app(app: App) -> None:
    """Set the session cookie defaults and the template filters the pages need."""
    session.configure_sessions(app)
    register_filters(app)
    app.add_template_global(asset_url, "asset_url")


_asset_versions: dict[str, str] = {}


def asset_url(filename: str) -> str:
    """Return the URL of a static file with a digest of its content, so browsers may cache it for long."""
    version = _asset_versions.get(filename)
    if version is None:
        version = hashlib.sha256((STATIC_FOLDER / filename).read_bytes()).hexdigest()[:12]
        _asset_versions[filename] = version
    return url_for("pages.static", filename=filename, v=version)
