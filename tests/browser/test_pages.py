"""Every page at desktop and phone width: renders cleanly, loads only local files, and is screenshotted.

Screenshots land in test-artifacts/screenshots/<page>.png and <page>-phone.png.
"""

from __future__ import annotations

import pytest

from hub.domain import external_uuid
from tests.browser.helpers import screenshot

PAGES = ("overview", "attention", "variability", "ticket", "improvements")

# Shows the page's width next to the viewport's: wider means the user scrolls sideways.
WIDTHS_JS = "() => [document.documentElement.scrollWidth, window.innerWidth]"


@pytest.fixture
def page_paths(live_hub, attention_tickets, pdca_cycles):
    """The path of each page, once the records it lists exist."""
    number = sorted(live_hub.incident_numbers)[0]
    return {
        "overview": "/",
        "attention": "/attention",
        "variability": "/variability",
        "ticket": f"/tickets/{external_uuid('ticket', 'servicenow', number)}",
        "improvements": "/improvements",
    }


def check_page(recorded, path):
    response = recorded.open(path)

    assert response.status == 200
    assert recorded.errors == []
    outside = [url for url in recorded.requests if not url.startswith(recorded.hub.base_url + "/")]
    assert outside == []


@pytest.mark.parametrize("name", PAGES)
def test_page_renders_at_desktop_width(analyst, page_paths, artifact_folder, name):
    check_page(analyst, page_paths[name])

    width, viewport = analyst.page.evaluate(WIDTHS_JS)
    assert width <= viewport
    screenshot(analyst.page, artifact_folder, name)


@pytest.mark.parametrize("name", PAGES)
def test_page_fits_phone_width(phone_analyst, page_paths, artifact_folder, name):
    check_page(phone_analyst, page_paths[name])

    width, viewport = phone_analyst.page.evaluate(WIDTHS_JS)
    assert viewport == 390
    assert width <= viewport
    screenshot(phone_analyst.page, artifact_folder, f"{name}-phone")


def test_signin_page_renders(anonymous, artifact_folder):
    check_page(anonymous, "/signin")

    assert anonymous.page.locator("input[name=token][type=password]").count() == 1
    screenshot(anonymous.page, artifact_folder, "signin")


def test_pages_send_content_security_policy(analyst, page_paths):
    for name in PAGES:
        response = analyst.open(page_paths[name])
        policy = response.headers["content-security-policy"]
        assert "default-src 'self'" in policy, name
        assert "script-src 'self'" in policy, name
        assert response.headers["cache-control"] == "no-store", name


def test_missing_asset_gets_html_not_found(anonymous):
    response = anonymous.page.request.get(anonymous.hub.base_url + "/assets/missing.css")

    assert response.status == 404
    assert response.headers["content-type"].startswith("text/html")
    assert 'data-status="404"' in response.text()
