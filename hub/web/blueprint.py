"""The blueprint class every API module uses: flask-smorest's, plus role checks."""

from __future__ import annotations

from collections.abc import Callable
from functools import wraps
from typing import Any

import flask_smorest

from hub.web.auth import authorize
from hub.web.parser import HubParser


class ApiBlueprint(flask_smorest.Blueprint):
    """A flask-smorest blueprint whose views declare the permission they need."""

    ARGUMENTS_PARSER = HubParser()

    def requires(self, permission: str) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
        """Check the bearer token and its role before the view parses any input.

        Put it right below ``route`` so that a request without a valid token gets
        401 (or 403) even when its body is invalid too.
        """

        def decorator(view: Callable[..., Any]) -> Callable[..., Any]:
            @wraps(view)
            def wrapper(*args: Any, **kwargs: Any) -> Any:
                authorize(permission)
                return view(*args, **kwargs)

            documented = self.alt_response(401, response="UNAUTHORIZED")(wrapper)
            return self.alt_response(403, response="FORBIDDEN")(documented)

        return decorator
