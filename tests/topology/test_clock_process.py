"""The Procfile's clock process under a process manager's SIGTERM."""

from __future__ import annotations

import os
import signal

from .processes import Processes, expand, procfile_commands, wait_until


def test_clock_stops_cleanly_on_sigterm(tmp_path):
    env = {name: value for name, value in os.environ.items() if not name.startswith("HUB_")}
    env["HUB_DATABASE_URL"] = f"sqlite:///{tmp_path}/hub.sqlite3"
    with Processes(tmp_path, env) as processes:
        clock = processes.start("clock", expand(procfile_commands()["clock"], env))
        wait_until(lambda: "Scheduler started" in processes.log("clock"), 60, processes.describe)

        clock.send_signal(signal.SIGTERM)
        clock.wait(timeout=30)

        log = processes.log("clock")
    assert clock.returncode == 0, log
    assert "Clock process received signal 15; stopping" in log
    assert "Scheduler stopped" in log
