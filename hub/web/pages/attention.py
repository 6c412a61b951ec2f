"""Attention: what needs action now, refreshed in place while the page is open.

SLA targets come from ``projections.sla.sla_rows`` (breached first, then at
risk, each in due-time order, which is the order of the time left) and
escalations from ``projections.queries.escalations``. The page's script
fetches ``/attention/live`` every few seconds and swaps in the new tables,
so the page stays current without a reload.
"""

from __future__ import annotations

from datetime import datetime, timezone
from typing import Any

from flask import Blueprint, current_app, render_template

from hub.web.pages.data import view_database
from hub.web.pages.session import viewer_required
from projections.queries import escalations
from projections.sla import sla_rows

# Rows per list; the page says when a list has more.
LIST_LIMIT = 100

# Seconds between refreshes; the app setting DASHBOARD_POLL_SECONDS overrides it.
DEFAULT_POLL_SECONDS = 15


def add_routes(blueprint: Blueprint) -> None:
    blueprint.add_url_rule("/attention", "attention", viewer_required(attention_page))
    blueprint.add_url_rule("/attention/live", "attention_live", viewer_required(attention_live))


def attention_lists(now: datetime) -> dict[str, Any]:
    """Read the lists as of ``now``: SLA targets breached and at risk, and open escalations."""
    db = view_database()
    breached = sla_rows(db, state="breached", now=now, limit=LIST_LIMIT)
    at_risk = sla_rows(db, state="at_risk", now=now, limit=LIST_LIMIT)
    overdue = escalations(db, state="open", overdue=True, now=now, limit=LIST_LIMIT)
    on_time = escalations(db, state="open", overdue=False, now=now, limit=LIST_LIMIT)
    # The most overdue promise first; the query returns episodes in escalation order.
    overdue_items = sorted(overdue["items"], key=lambda item: (item["promised_by"], item["ticket_id"]))
    return {
        "now": now,
        "sla_items": breached["items"] + at_risk["items"],
        "breached_more": breached["next_cursor"] is not None,
        "at_risk_more": at_risk["next_cursor"] is not None,
        "breached_count": len(breached["items"]),
        "at_risk_count": len(at_risk["items"]),
        "overdue_escalations": overdue_items,
        "overdue_more": overdue["next_cursor"] is not None,
        "open_escalations": on_time["items"],
        "open_more": on_time["next_cursor"] is not None,
        "limit": LIST_LIMIT,
    }


def poll_seconds() -> float:
    return float(current_app.config.get("DASHBOARD_POLL_SECONDS", DEFAULT_POLL_SECONDS))


def attention_page() -> str:
    lists = attention_lists(datetime.now(timezone.utc))
    return render_template("attention.html", poll_seconds=poll_seconds(), **lists)


def attention_live() -> str:
    lists = attention_lists(datetime.now(timezone.utc))
    return render_template("_attention_lists.html", **lists)
