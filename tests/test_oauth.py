"""`/oauth/token/`: refreshing OAuth tokens the way oauth.bitrix.info answers."""

from __future__ import annotations

import re
from concurrent.futures import ThreadPoolExecutor

import pytest

from tests.conftest import T0

GRANT = {"grant_type": "refresh_token", "client_id": "local.emulator.app",
         "client_secret": "devclientsecret", "refresh_token": "devrefreshtoken"}


def refresh(client, **overrides):
    return client.get("/oauth/token/", query_string={**GRANT, **overrides})


def test_refresh_answers_a_new_token_pair(client):
    response = refresh(client)
    assert response.status_code == 200
    assert response.headers["Content-Type"] == "application/json"
    body = response.get_json()
    assert list(body) == ["access_token", "expires", "expires_in", "scope", "domain",
                          "server_endpoint", "status", "client_endpoint", "member_id",
                          "user_id", "refresh_token"]
    assert re.fullmatch(r"[0-9a-f]{70}", body["access_token"])
    assert re.fullmatch(r"[0-9a-f]{70}", body["refresh_token"])
    assert body["access_token"] != body["refresh_token"]
    assert body["expires"] == int(T0) + 3600 and body["expires_in"] == 3600
    assert body["scope"] == "im" and body["user_id"] == 1 and body["status"] == "L"
    assert body["client_endpoint"] == "http://localhost/rest/"
    assert body["server_endpoint"] == "http://localhost/rest/"
    assert body["domain"] == "localhost"
    assert re.fullmatch(r"[0-9a-f]{32}", body["member_id"])
    assert "http:\\/\\/localhost\\/rest\\/" in response.get_data(as_text=True)  # PHP JSON


def test_the_new_access_token_works_and_keeps_the_scopes(client, rest):
    body = refresh(client).get_json()
    ok = rest.oauth("im.notify.personal.add", {"USER_ID": 2, "MESSAGE": "hi"},
                    token=body["access_token"])
    assert ok.status_code == 200 and isinstance(ok.get_json()["result"], int)
    assert rest.oauth("user.current", token=body["access_token"]).status_code == 401
    assert rest.oauth("profile", token=body["access_token"]).get_json()["result"]["ID"] == "1"


def test_expired_token_then_refresh_then_success(client, rest, clock):
    first = refresh(client).get_json()
    clock.advance(3599)
    assert rest.oauth("server.time", token=first["access_token"]).status_code == 200
    clock.advance(1)  # expires_at <= now: expired
    expired = rest.oauth("server.time", token=first["access_token"])
    assert expired.status_code == 401
    assert expired.get_json() == {"error": "expired_token",
                                  "error_description": "The access token provided has expired"}
    second = refresh(client, refresh_token=first["refresh_token"]).get_json()
    assert second["expires"] == int(T0) + 3600 * 2
    retried = rest.oauth("server.time", token=second["access_token"])
    assert retried.status_code == 200
    assert retried.get_json()["result"] == "2026-01-01T01:00:00+00:00"


def test_a_refresh_token_works_once(client):
    assert refresh(client).status_code == 200
    again = refresh(client)
    assert again.status_code == 400
    assert again.get_json() == {"error": "invalid_grant",
                                "error_description": "Invalid refresh token"}


def test_the_old_access_token_lives_until_its_own_expiry(client, rest):
    refresh(client)
    assert rest.oauth("server.time", token="devaccesstoken").status_code == 200


def test_wrong_secret_is_refused_and_does_not_spend_the_token(client):
    for secret in ("wrong", "", "devclientsecreT", "devclientsecret2", "ü"):
        response = refresh(client, client_secret=secret)
        assert response.status_code == 400
        assert response.get_json() == {"error": "invalid_client",
                                       "error_description": "The client credentials are invalid"}
    assert refresh(client).status_code == 200


def test_another_apps_secret_or_client_is_refused(client):
    other = refresh(client, client_id="other.app", client_secret="othersecret")
    assert other.status_code == 400 and other.get_json()["error"] == "invalid_grant"
    assert refresh(client).status_code == 200  # still unspent


def test_unknown_client_is_wrong_client_with_status_200(client):
    response = refresh(client, client_id="no.such.app")
    assert response.status_code == 200
    assert response.get_json() == {"error": "wrong_client", "error_description": "Wrong client"}


def test_missing_client_id(client):
    response = refresh(client, client_id="")
    assert response.status_code == 400
    assert response.get_json()["error"] == "invalid_client"


def test_inactive_application(client):
    response = refresh(client, client_id="disabled.app", client_secret="x")
    assert response.status_code == 401
    assert response.get_json() == {"error": "NOT_INSTALLED",
                                   "error_description": "Application not installed"}


@pytest.mark.parametrize(("grant_type", "error"), [
    ("", "invalid_request"), ("password", "unsupported_grant_type"),
    ("client_credentials", "unsupported_grant_type"), ("REFRESH_TOKEN", "unsupported_grant_type"),
])
def test_bad_grant_type(client, grant_type, error):
    response = refresh(client, grant_type=grant_type)
    assert response.status_code == 400
    assert response.get_json() == {
        "error": error, "error_description": "Invalid grant_type parameter or parameter missing"}


def test_missing_or_unknown_refresh_token(client):
    missing = refresh(client, refresh_token="")
    assert missing.status_code == 400
    assert missing.get_json() == {"error": "invalid_request",
                                  "error_description": 'No "refresh_token" parameter found'}
    unknown = refresh(client, refresh_token="devaccesstoken")  # an access token is no grant
    assert unknown.status_code == 400 and unknown.get_json()["error"] == "invalid_grant"


def test_an_issued_refresh_token_expires_after_180_days(client, clock):
    first = refresh(client).get_json()
    clock.advance(180 * 86400)
    late = refresh(client, refresh_token=first["refresh_token"])
    assert late.status_code == 400 and late.get_json()["error"] == "invalid_grant"


def test_authorization_code_grant_has_no_valid_codes(client):
    response = refresh(client, grant_type="authorization_code", code="abc")
    assert response.status_code == 400
    assert response.get_json()["error"] == "invalid_grant"
    no_code = refresh(client, grant_type="authorization_code")
    assert no_code.get_json()["error"] == "invalid_request"
    wrong = refresh(client, grant_type="authorization_code", code="abc", client_secret="x")
    assert wrong.get_json()["error"] == "invalid_client"


@pytest.mark.parametrize("path", ["/oauth/token/", "/oauth/token"])
def test_post_form_and_both_paths(client, path):
    response = client.post(path, data=GRANT)
    assert response.status_code == 200
    assert response.get_json()["user_id"] == 1


def test_refresh_is_per_portal_host(client):
    # an unknown host selects the default portal; the token table is keyed by portal
    response = client.get("/oauth/token/", query_string=GRANT,
                          headers={"Host": "emu.example:8443"})
    body = response.get_json()
    assert body["client_endpoint"] == "http://emu.example:8443/rest/"
    assert body["domain"] == "emu.example:8443"


def test_tokens_are_stored_hashed(client, emulator):
    body = refresh(client).get_json()
    stored = emulator.database.query("SELECT access_hash, kind, expires_at FROM tokens")
    hashes = {row["access_hash"] for row in stored}
    assert body["access_token"] not in hashes and body["refresh_token"] not in hashes
    assert emulator.portals.token("default", body["refresh_token"], kind="refresh") is not None
    assert emulator.portals.token("default", "devrefreshtoken", kind="refresh") is None


def test_racing_refreshes_with_one_token_only_one_wins(emulator):
    def attempt(_):
        return emulator.portals.rotate_refresh_token("default", "devrefreshtoken",
                                                     "local.emulator.app", T0)

    with ThreadPoolExecutor(max_workers=8) as pool:
        outcomes = list(pool.map(attempt, range(16)))
    winners = [outcome for outcome in outcomes if outcome is not None]
    assert len(winners) == 1
    assert winners[0]["user_id"] == 1 and winners[0]["scopes"] == ["im"]
