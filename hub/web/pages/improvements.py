"""Improvements: the PDCA log, each cycle with its baseline, target, measured value and decision.

Entries are ``projections.queries.improvements``, the rows behind the API's
PDCA log, including the KPI measured again from the views over the check window.
"""

from __future__ import annotations

from typing import Any

from flask import Blueprint, render_template, request

from hub.web.pages.data import view_database
from hub.web.pages.formatting import COUNT, HOURS, NPS, RATIO, SCORE
from hub.web.pages.session import viewer_required
from projections.improvements import PHASES
from projections.queries import improvements


def add_routes(blueprint: Blueprint) -> None:
    blueprint.add_url_rule("/improvements", "improvements", viewer_required(improvements_page))


def kpi_kind(kpi: str) -> str:
    """Return how a KPI's values print, from the naming of the KPI row fields.

    A name that is no KPI field (a plan may name any KPI) prints as a plain number.
    """
    if kpi.endswith("_cv") or (kpi.endswith("_mean") and "hours" not in kpi):
        return SCORE
    if "hours" in kpi:
        return HOURS
    if kpi in ("fcr", "csat") or kpi.endswith("_rate") or "sla_adherence" in kpi:
        return RATIO
    if kpi == "nps":
        return NPS
    if kpi in ("tickets", "open", "resolved") or kpi.endswith("_responses"):
        return COUNT
    return SCORE


def improvements_page() -> Any:
    phase = request.args.get("phase", "").strip() or None
    if phase is not None and phase not in PHASES:
        message = f"Phase {phase!r} is invalid; pick one of {', '.join(PHASES)}."
        return render_template("improvements.html", entries=[], phase=None, phases=PHASES, error=message), 400
    entries = improvements(view_database(), phase=phase)
    for entry in entries:
        entry["kind"] = kpi_kind(entry["kpi"])
    return render_template("improvements.html", entries=entries, phase=phase, phases=PHASES, error=None)
