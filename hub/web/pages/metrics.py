"""The metrics the pages show: which KPI row field, its label, how it prints, and which way is better."""

from __future__ import annotations

from dataclasses import dataclass

from hub.web.pages.formatting import COUNT, HOURS, NPS, RATIO, SCORE


@dataclass(frozen=True)
class Metric:
    """One figure of a KPI row (``key``) and how a page presents it."""

    key: str
    label: str
    kind: str
    # "higher" or "lower" is better; None when neither is (ticket volume).
    better: str | None
    help: str = ""
    # The column heading in tables; the label when empty.
    short: str = ""

    @property
    def heading(self) -> str:
        return self.short or self.label


TICKETS = Metric("tickets", "Tickets opened", COUNT, None, "Tickets opened in the period.", "Tickets")
FIRST_RESPONSE_P50 = Metric(
    "first_response_hours_p50", "First response, median", HOURS, "lower",
    "Opened to the first public agent reply, in calendar time.", "FRT p50",
)
FIRST_RESPONSE_P90 = Metric("first_response_hours_p90", "First response, p90", HOURS, "lower")
RESOLUTION_P50 = Metric(
    "resolution_hours_p50", "Resolution time, median", HOURS, "lower",
    "Opened to the final resolution, in calendar time.", "Resolution p50",
)
RESOLUTION_P90 = Metric("resolution_hours_p90", "Resolution time, p90", HOURS, "lower", "", "Resolution p90")
FCR = Metric(
    "fcr", "First-contact resolution", RATIO, "higher",
    "Resolved tickets solved with one public reply and never reopened.", "FCR",
)
CSAT = Metric("csat", "CSAT", RATIO, "higher", "Satisfied ratings (4-5 of 5, or good) among rated tickets.")
NPS_SCORE = Metric("nps", "NPS", NPS, "higher", "Promoters minus detractors, in percent of responses.")
CES = Metric("ces", "CES (1-7)", SCORE, "lower", "Mean customer effort score; lower is less effort.")
SLA_ADHERENCE = Metric(
    "sla_adherence", "SLA adherence", RATIO, "higher", "Targets met among measured SLA targets.", "SLA",
)
SOURCE_SLA_ADHERENCE = Metric(
    "source_sla_adherence", "SLA met, per source system", RATIO, "higher",
    "Tickets whose source system reported the SLA as made.", "SLA (source)",
)
REOPEN_RATE = Metric("reopen_rate", "Reopen rate", RATIO, "lower", "Tickets reopened at least once.", "Reopened")
ESCALATION_RATE = Metric("escalation_rate", "Escalation rate", RATIO, "lower", "Tickets escalated at least once.", "Escalated")
BACKLOG = Metric("backlog", "Backlog at period end", COUNT, "lower", "Tickets open at the end of the period.")

# The overview's tiles, in order. Backlog comes from the backlog query, the others from the KPI row.
TILES = (
    TICKETS, FIRST_RESPONSE_P50, RESOLUTION_P50, FCR, CSAT, NPS_SCORE, CES,
    SLA_ADHERENCE, SOURCE_SLA_ADHERENCE, REOPEN_RATE, ESCALATION_RATE, BACKLOG,
)

# Columns of the breakdown tables on the overview.
BREAKDOWN_COLUMNS = (
    TICKETS, FIRST_RESPONSE_P50, RESOLUTION_P50, RESOLUTION_P90, FCR, SLA_ADHERENCE,
    SOURCE_SLA_ADHERENCE, REOPEN_RATE, ESCALATION_RATE,
)

# Dimensions the overview breaks the period down by, with their headings.
BREAKDOWNS = (("priority", "Priority"), ("channel", "Channel"), ("group", "Group"))
