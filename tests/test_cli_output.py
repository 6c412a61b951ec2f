"""Output formats shared by the CLI commands."""

from __future__ import annotations

from hub.cli.common import print_rows

ROWS = [{"priority": "high", "tickets": 408, "reopen_rate": 0.012254901960784314, "csat": None}]


def test_csv_keeps_full_precision(capsys):
    print_rows(ROWS, "csv")

    assert capsys.readouterr().out.splitlines() == [
        "priority,tickets,reopen_rate,csat",
        "high,408,0.012254901960784314,",
    ]


def test_table_rounds_for_reading(capsys):
    print_rows(ROWS, "table")

    assert capsys.readouterr().out.splitlines() == [
        "priority  tickets  reopen_rate  csat",
        "high      408      0.01225",
    ]
