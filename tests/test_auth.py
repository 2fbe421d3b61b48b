"""Credentials: webhooks and OAuth tokens, and the 401s a portal answers (Part A 3)."""

from __future__ import annotations

from datetime import UTC

import pytest

SEND = {"USER_ID": 2, "MESSAGE": "hi"}
ADD = "im.notify.personal.add"


def error_of(response) -> tuple[int, str, str]:
    body = response.get_json()
    assert "time" not in body and "result" not in body
    return response.status_code, body["error"], body["error_description"]


@pytest.mark.parametrize("user, code", [(1, "wrongtoken"), (2, "devtoken"), (999, "devtoken"),
                                        ("nobody", "devtoken"), ("01", "devtoken"),
                                        (1, "DEVTOKEN"), (1, "devtoke")])
def test_wrong_webhook_credentials(client, user, code):
    response = client.post(f"/rest/{user}/{code}/{ADD}", json=SEND)
    assert error_of(response) == (401, "INVALID_CREDENTIALS", "Invalid request credentials")


def test_webhook_of_inactive_user(client):
    response = client.post(f"/rest/3/inactivetoken/{ADD}", json=SEND)
    assert error_of(response) == (401, "authorization_error", "Unable to authorize user")


def test_webhook_by_login_of_inactive_user_is_invalid(client):
    response = client.post(f"/rest/carol/inactivetoken/{ADD}", json=SEND)
    assert error_of(response) == (401, "INVALID_CREDENTIALS", "Invalid request credentials")


def test_webhook_without_scope(client, emulator):
    response = client.post(f"/rest/2/noimtoken/{ADD}", json=SEND)
    assert error_of(response) == (
        401, "insufficient_scope",
        "The request requires higher privileges than provided by the webhook token")
    assert emulator.notifications.count("default") == 0


def test_no_credentials(client):
    response = client.post(f"/rest/{ADD}", json=SEND)
    assert error_of(response) == (401, "NO_AUTH_FOUND", "Wrong authorization data")


@pytest.mark.parametrize("how", ["auth_body", "auth_query", "access_token", "bearer",
                                 "bearer_lower", "auth_form"])
def test_oauth_token_sources(client, how):
    path, kwargs = f"/rest/{ADD}", {"json": SEND}
    if how == "auth_body":
        kwargs = {"json": {**SEND, "auth": "devaccesstoken"}}
    elif how == "auth_query":
        path += "?auth=devaccesstoken"
    elif how == "access_token":
        kwargs = {"json": {**SEND, "access_token": "devaccesstoken"}}
    elif how == "bearer":
        kwargs["headers"] = {"Authorization": "Bearer devaccesstoken"}
    elif how == "bearer_lower":
        kwargs["headers"] = {"Authorization": "bearer devaccesstoken"}
    elif how == "auth_form":
        kwargs = {"data": {**SEND, "auth": "devaccesstoken"}}
    response = client.post(path, **kwargs)
    assert response.status_code == 200, response.data
    assert isinstance(response.get_json()["result"], int)


def test_bearer_wins_over_auth_parameter(client):
    response = client.post(f"/rest/{ADD}", json={**SEND, "auth": "garbage"},
                           headers={"Authorization": "Bearer devaccesstoken"})
    assert response.status_code == 200


@pytest.mark.parametrize("token, expected", [
    ("expiredaccesstoken", (401, "expired_token", "The access token provided has expired")),
    ("nosuchtoken", (401, "invalid_token", "Unable to get application by token")),
    ("disabledapptoken", (401, "APPLICATION_NOT_FOUND", "Application not found")),
    ("carolaccesstoken", (401, "authorization_error", "Unable to authorize user")),
    ("noimaccesstoken", (
        401, "insufficient_scope",
        "The request requires higher privileges than provided by the access token")),
])
def test_oauth_errors(client, emulator, token, expected):
    response = client.post(f"/rest/{ADD}", json={**SEND, "auth": token})
    assert error_of(response) == expected
    assert emulator.notifications.count("default") == 0


def test_token_expires_on_the_emulator_clock(client, clock, emulator):
    from datetime import datetime

    expiry = datetime(2099, 12, 31, 23, 59, 59, tzinfo=UTC).timestamp()
    clock.set(expiry - 1)
    assert client.post(f"/rest/{ADD}", json={**SEND, "auth": "devaccesstoken"}).status_code == 200
    clock.set(expiry)
    response = client.post(f"/rest/{ADD}", json={**SEND, "auth": "devaccesstoken"})
    assert error_of(response)[1] == "expired_token"


def test_webhook_path_wins_over_auth_parameter(client):
    response = client.post(f"/rest/1/wrongtoken/{ADD}", json={**SEND, "auth": "devaccesstoken"})
    assert error_of(response)[1] == "INVALID_CREDENTIALS"


def test_auth_parameters_do_not_reach_the_handler(client, emulator):
    # `auth` would otherwise be read as a parameter; here it is simply consumed.
    response = client.post(f"/rest/{ADD}", json={"USER_ID": 2, "MESSAGE": "hi",
                                                 "auth": "devaccesstoken", "state": "s"})
    assert response.status_code == 200
