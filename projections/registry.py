"""The views the hub maintains: the runner, the worker and the CLI take them from here."""

from __future__ import annotations

from projections.runner import View


def all_views() -> list[View]:
    """Return a fresh instance of every registered view, in the order they are applied."""
    views: list[View] = []
    return views
