"""Service hub: an event-sourced record of every client-service interaction."""

__version__ = "0.1.0"
