"""The hub's aggregates, their events and guards."""

from hub.domain.base import Context, ServiceAggregate, external_uuid
from hub.domain.client_account import ClientAccount
from hub.domain.errors import DomainError, InvalidValueError, StateConflictError
from hub.domain.improvement import Improvement
from hub.domain.knowledge import KnowledgeArticle
from hub.domain.problem import Problem
from hub.domain.report import Report
from hub.domain.sla_policy import SlaPolicy
from hub.domain.ticket import Ticket

__all__ = [
    "ClientAccount", "Context", "DomainError", "Improvement", "InvalidValueError",
    "KnowledgeArticle", "Problem", "Report", "ServiceAggregate", "SlaPolicy", "StateConflictError",
    "Ticket", "external_uuid",
]
