"""Signing in to the dashboard with an API token, roles, and what the session cookie keeps."""

from __future__ import annotations

import hashlib

from tests.browser.helpers import sign_in


def test_page_without_session_redirects_to_signin(anonymous):
    anonymous.open("/variability")

    assert anonymous.page.url == anonymous.hub.base_url + "/signin?next=/variability"
    assert anonymous.page.locator("input[name=token]").count() == 1


def test_signin_returns_to_requested_page(anonymous):
    anonymous.open("/improvements")
    anonymous.page.fill("input[name=token]", anonymous.hub.tokens["analyst"])
    with anonymous.page.expect_navigation():
        anonymous.page.click(".signin-card button[type=submit]")

    assert anonymous.page.url == anonymous.hub.base_url + "/improvements"
    assert anonymous.page.locator("body").get_attribute("data-page") == "improvements"


def test_invalid_token_is_rejected(anonymous):
    sign_in(anonymous, "hub_not-a-real-token")

    assert anonymous.page.url == anonymous.hub.base_url + "/signin"
    assert "invalid or revoked" in anonymous.page.locator(".error-box").inner_text()
    anonymous.open("/")
    assert anonymous.page.url.startswith(anonymous.hub.base_url + "/signin")


def test_agent_role_gets_forbidden_page(anonymous):
    anonymous.page.goto(anonymous.hub.base_url + "/signin")
    anonymous.page.fill("input[name=token]", anonymous.hub.tokens["agent"])
    with anonymous.page.expect_navigation() as navigation:
        anonymous.page.click(".signin-card button[type=submit]")

    assert navigation.value.status == 403
    assert "The agent role may not view the dashboard" in anonymous.page.locator(".error-box").inner_text()
    anonymous.open("/")
    assert anonymous.page.url.startswith(anonymous.hub.base_url + "/signin")


def test_auditor_role_may_view_pages(anonymous):
    sign_in(anonymous, anonymous.hub.tokens["auditor"])

    response = anonymous.open("/attention")

    assert response.status == 200
    assert "auditor" in anonymous.page.locator(".signout .who").inner_text()


def test_session_cookie_keeps_token_hash_only(analyst):
    token = analyst.hub.tokens["analyst"]
    app = analyst.hub.app

    cookies = analyst.page.context.cookies()

    assert [cookie["name"] for cookie in cookies] == ["hub_session"]
    assert cookies[0]["httpOnly"] is True
    assert cookies[0]["sameSite"] == "Lax"
    session = app.session_interface.get_signing_serializer(app).loads(cookies[0]["value"])
    assert session["token_hash"] == hashlib.sha256(token.encode()).hexdigest()
    assert token not in repr(session)


def test_pages_never_show_token(analyst):
    token = analyst.hub.tokens["analyst"]

    for path in ("/", "/attention", "/variability", "/tickets", "/improvements"):
        analyst.open(path)
        assert token not in analyst.page.content(), path


def test_revoked_token_ends_session(browser, live_hub):
    from tests.browser.helpers import DESKTOP, new_page

    with live_hub.app.app_context():
        token, secret = live_hub.services().tokens.create("analyst", "browser-revoked")
    context, recorded = new_page(browser, live_hub, DESKTOP)
    try:
        sign_in(recorded, secret)
        assert recorded.open("/improvements").status == 200

        live_hub.services().tokens.revoke(token.token_id)
        recorded.open("/improvements")

        assert recorded.page.url == live_hub.base_url + "/signin?next=/improvements"
    finally:
        context.close()


def test_sign_out_ends_session(own_analyst):
    own_analyst.open("/tickets")

    with own_analyst.page.expect_navigation():
        own_analyst.page.click(".signout button")
    own_analyst.open("/")

    assert own_analyst.page.url.startswith(own_analyst.hub.base_url + "/signin")


def test_signin_form_rejects_missing_form_token(analyst):
    # A cross-site form post lacks this session's form token, so the server rejects it.
    response = analyst.page.request.post(
        analyst.hub.base_url + "/signin", form={"token": analyst.hub.tokens["admin"], "next": "/"},
        max_redirects=0,
    )

    assert response.status == 400
    assert "expired" in response.text()
