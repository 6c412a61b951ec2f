"""Render the README's screenshot: the overview on the full bundled ServiceNow log.

Run it from the repository root after a change to the overview's look:

    .venv/bin/python -m tests.browser.render_readme_screenshot [--output docs/img/overview.png]

It imports the whole log (24,918 incidents) into a temporary SQLite store,
which takes one to two minutes. Then it serves the app on 127.0.0.1, signs in
with an analyst token and captures the top of the overview at 1280 px in
Debian's Chromium.
"""

from __future__ import annotations

import argparse
import tempfile
import threading
from pathlib import Path

from tests.browser.helpers import CHROMIUM, CHROMIUM_ARGS, DESKTOP, quiet_request_handler

# Enough height for the tiles, the trend charts and the start of the breakdown.
CLIP_HEIGHT = 1350


def render(output: Path) -> int:
    from playwright.sync_api import sync_playwright
    from werkzeug.serving import make_server

    from connectors.servicenow_import import BUNDLED_EXPORT, import_incidents
    from hub.application import create_application
    from hub.settings import load_settings
    from hub.web import create_app
    from hub.web.services import EXTENSION_NAME, services

    with tempfile.TemporaryDirectory(prefix="hub-readme-") as folder:
        database_url = f"sqlite:///{folder}/hub.sqlite3"
        application = create_application(load_settings({"HUB_DATABASE_URL": database_url}))
        try:
            summary = import_incidents(application, BUNDLED_EXPORT)
        finally:
            application.close()
        print(f"Imported {summary.incidents} incidents ({summary.events_written} events)")

        app = create_app({"DATABASE_URL": database_url, "RUN_PROJECTIONS": True})
        hub = app.extensions[EXTENSION_NAME]
        hub.background_runner.wait(hub.application.max_position(), timeout=600)
        with app.app_context():
            _, secret = services().tokens.create("analyst", "readme-screenshot")
        server = make_server("127.0.0.1", 0, app, threaded=True, request_handler=quiet_request_handler())
        thread = threading.Thread(target=server.serve_forever, daemon=True)
        thread.start()
        base_url = f"http://127.0.0.1:{server.server_port}"
        try:
            with sync_playwright() as playwright:
                browser = playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
                page = browser.new_page(viewport=DESKTOP)
                page.goto(f"{base_url}/signin?next=/")
                page.fill("input[name=token]", secret)
                page.click(".signin-card button[type=submit]")
                page.wait_for_selector("body[data-charts-ready='true']")
                output.parent.mkdir(parents=True, exist_ok=True)
                page.screenshot(
                    path=str(output), full_page=True,
                    clip={"x": 0, "y": 0, "width": DESKTOP["width"], "height": CLIP_HEIGHT},
                )
                browser.close()
        finally:
            server.shutdown()
            thread.join(10)
            hub.close()
    print(f"Saved {output} ({output.stat().st_size:,} bytes)")
    return 0


def main() -> int:
    parser = argparse.ArgumentParser(description="Render the README's overview screenshot on the bundled data.")
    parser.add_argument("--output", type=Path, default=Path("docs/img/overview.png"), help="PNG file to write")
    args = parser.parse_args()
    return render(args.output)


if __name__ == "__main__":
    raise SystemExit(main())
