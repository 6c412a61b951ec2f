"""The views the hub maintains: the runner, the worker and the CLI take them from here."""

from __future__ import annotations

from projections.escalations import EscalationView
from projections.improvements import ImprovementView
from projections.kpis import KpiSummaryView, NpsView
from projections.runner import View
from projections.sla import SlaView
from projections.tickets import TicketFactsView


def all_views() -> list[View]:
    """Return a fresh instance of every registered view, in the order they are applied.

    The KPI summary comes last because it reads the other views' tables.
    """
    views: list[View] = [
        TicketFactsView(),
        EscalationView(),
        ImprovementView(),
        NpsView(),
        SlaView(),
    ]
    views.append(KpiSummaryView())
    return views
