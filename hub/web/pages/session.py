"""Signing in to the dashboard with an API token, and who may see the pages.

The sign-in form takes an API token and checks it against the API's token
store. The session cookie (Flask's: signed, HttpOnly, SameSite=Lax) then keeps
the SHA-256 hash of the token, never the token itself, so a copied cookie
cannot be replayed against the API. Every page request looks the hash up
again, so a revoked token ends the session at the next request.
"""

from __future__ import annotations

import hmac
import logging
import os
import secrets
from collections.abc import Callable
from functools import wraps
from typing import Any
from urllib.parse import urlsplit

from flask import Blueprint, Response, g, redirect, render_template, request, session, url_for
from flask.sansio.app import App

from hub.settings import ConfigurationError, read_flag
from hub.web.services import services
from hub.web.storage import TOKENS_TABLE, ApiToken, hash_token

logger = logging.getLogger(__name__)

# Roles that may see the dashboard: it shows records and views, but changes nothing.
VIEWER_ROLES = ("analyst", "auditor", "admin")

SECRET_KEY_VARIABLE = "HUB_SECRET_KEY"
SECURE_COOKIE_VARIABLE = "HUB_SESSION_COOKIE_SECURE"
MIN_SECRET_KEY_LENGTH = 32
SESSION_COOKIE_NAME = "hub_session"

# Content Security Policy of every page: scripts, styles, fonts and data come
# only from this server, and no other site may frame the pages.
CONTENT_SECURITY_POLICY = (
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
    "connect-src 'self'; frame-ancestors 'none'; base-uri 'none'; form-action 'self'"
)


def configure_sessions(app: App) -> None:
    """Give the app a secret key and safe session cookie settings, unless it has its own."""
    if not app.config.get("SECRET_KEY"):
        configured = os.environ.get(SECRET_KEY_VARIABLE, "")
        if configured:
            if len(configured) < MIN_SECRET_KEY_LENGTH:
                msg = (
                    f"{SECRET_KEY_VARIABLE} is {len(configured)} characters long; use at least "
                    f"{MIN_SECRET_KEY_LENGTH} random characters, for example the output of "
                    "python -c 'import secrets; print(secrets.token_urlsafe(32))'"
                )
                raise ConfigurationError(msg)
            app.config["SECRET_KEY"] = configured
        else:
            # NOTE: a random key per process signs the dashboard's sessions, so they end when
            # the process restarts. With several gunicorn workers, a session made by one worker
            # is rejected by the others, so set HUB_SECRET_KEY for such deployments.
            app.config["SECRET_KEY"] = secrets.token_urlsafe(32)
            logger.info("%s is not set; dashboard sessions use a random key of this process", SECRET_KEY_VARIABLE)
    # The API keeps no session of its own, so the dashboard sets the cookie's name and flags.
    app.config["SESSION_COOKIE_NAME"] = SESSION_COOKIE_NAME
    app.config["SESSION_COOKIE_HTTPONLY"] = True
    app.config["SESSION_COOKIE_SAMESITE"] = "Lax"
    if read_flag(os.environ, SECURE_COOKIE_VARIABLE):
        app.config["SESSION_COOKIE_SECURE"] = True


def add_routes(blueprint: Blueprint) -> None:
    blueprint.add_url_rule("/signin", "signin", sign_in_form, methods=["GET"])
    blueprint.add_url_rule("/signin", "signin_submit", sign_in, methods=["POST"])
    blueprint.add_url_rule("/signout", "signout", sign_out, methods=["POST"])
    blueprint.after_request(add_security_headers)
    blueprint.context_processor(template_context)


def add_security_headers(response: Response) -> Response:
    response.headers.setdefault("Content-Security-Policy", CONTENT_SECURITY_POLICY)
    response.headers.setdefault("X-Content-Type-Options", "nosniff")
    response.headers.setdefault("Referrer-Policy", "same-origin")
    response.headers.setdefault("X-Frame-Options", "DENY")
    if request.endpoint == "pages.static":
        if request.args.get("v") and response.status_code == 200:
            # The URL carries a digest of the file (see asset_url), so a changed file gets a new URL.
            response.headers["Cache-Control"] = "public, max-age=31536000, immutable"
    else:
        # Pages show live records; a shared or back-button cache must not keep them.
        response.headers["Cache-Control"] = "no-store"
    return response


def template_context() -> dict[str, Any]:
    return {"csrf_token": csrf_token, "viewer": g.get("viewer")}


# The form.

def csrf_token() -> str:
    """Return the session's form token, creating it on first use."""
    token = session.get("csrf")
    if not token:
        token = session["csrf"] = secrets.token_urlsafe(24)
    return str(token)


def check_csrf() -> bool:
    expected = session.get("csrf")
    submitted = request.form.get("csrf", "")
    return bool(expected) and hmac.compare_digest(str(expected), submitted)


def safe_next(target: str | None) -> str:
    """Return ``target`` if it is a path on this site, else the overview's path."""
    if target:
        parts = urlsplit(target)
        if not parts.scheme and not parts.netloc and target.startswith("/") and not target.startswith("//"):
            return target
    return url_for("pages.overview")


def sign_in_form() -> str:
    return render_template("signin.html", next=safe_next(request.args.get("next")), error=None)


def sign_in() -> Any:
    next_path = safe_next(request.form.get("next"))
    if not check_csrf():
        # The form's token lives in the session; it is gone when the cookie expired or the key changed.
        session.pop("csrf", None)
        return render_template(
            "signin.html", next=next_path, error="The sign-in form expired. Paste the token again.",
        ), 400

    secret = request.form.get("token", "").strip()
    if not secret:
        return render_template("signin.html", next=next_path, error="Paste an API token to sign in."), 400
    token = services().tokens.verify(secret)
    if token is None:
        logger.info("Dashboard sign-in rejected an invalid or revoked token from %s", request.remote_addr)
        message = "This token is invalid or revoked. Create one with 'hub tokens create --role analyst'."
        return render_template("signin.html", next=next_path, error=message), 401
    if token.role not in VIEWER_ROLES:
        logger.info("Dashboard sign-in rejected token %s with role %s", token.token_id, token.role)
        return forbidden_page(token.role)

    # A fresh session on sign-in, so a session fixed by someone else before sign-in is dropped.
    session.clear()
    session["token_hash"] = hash_token(secret)
    session["csrf"] = secrets.token_urlsafe(24)
    logger.info("Dashboard sign-in with token %s (%s, role %s)", token.token_id, token.name, token.role)
    return redirect(next_path, code=303)


def sign_out() -> Any:
    if check_csrf():
        token_hash = session.get("token_hash")
        session.clear()
        if token_hash:
            logger.info("Dashboard sign-out")
    return redirect(url_for("pages.signin"), code=303)


# Checking every page request.

def find_token(token_hash: str) -> ApiToken | None:
    """Return the live API token with this hash, or None."""
    rows = services().tables.fetch(
        "SELECT token_id, name, role, created_at, revoked_at FROM {schema}" + TOKENS_TABLE
        + " WHERE token_hash = ?",
        (token_hash,),
    )
    if not rows or rows[0]["revoked_at"] is not None:
        return None
    return ApiToken(**rows[0])


def forbidden_page(role: str) -> tuple[str, int]:
    message = (
        f"The {role} role may not view the dashboard. "
        f"Sign in with a token of one of these roles: {', '.join(VIEWER_ROLES)}."
    )
    return render_template("error.html", status=403, title="Forbidden", message=message), 403


def viewer_required(view: Callable[..., Any]) -> Callable[..., Any]:
    """Serve the view only to a signed-in analyst, auditor or admin.

    Without a valid session, a page request is redirected to the sign-in form.
    A request from the page's own script (``X-Requested-With: fetch``) gets a
    bare 401 instead, so the script can send the browser there itself.
    """

    @wraps(view)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        token_hash = session.get("token_hash")
        token = find_token(token_hash) if isinstance(token_hash, str) else None
        if token is None:
            if token_hash:
                logger.info("Dashboard session ended: its token is revoked or unknown")
                session.clear()
            if request.headers.get("X-Requested-With") == "fetch":
                return Response("Sign in again.", status=401, mimetype="text/plain")
            return redirect(url_for("pages.signin", next=request.full_path.rstrip("?")), code=303)
        if token.role not in VIEWER_ROLES:
            return forbidden_page(token.role)
        g.viewer = token
        return view(*args, **kwargs)

    return wrapper
