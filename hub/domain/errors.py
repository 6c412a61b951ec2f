"""Domain errors raised by the aggregates' guards."""

from __future__ import annotations


class DomainError(Exception):
    """Base class for errors a command raises before it records anything."""


class InvalidValueError(DomainError, ValueError):
    """A command argument is outside its allowed values; `field` names it."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(message)
        self.field = field


class StateConflictError(DomainError):
    """The aggregate's current state forbids the command."""

    def __init__(self, aggregate_id: object, state: str, message: str) -> None:
        super().__init__(message)
        self.aggregate_id = aggregate_id
        self.state = state
