"""End to end with the official Python SDK (b24pysdk, unmodified) against `b24emu serve --tls`.

One server for the module: typed system and user calls, `call_batch`, the typed `im.notify.*`
family, and OAuth (an expired token refreshed through the emulator's `/oauth/token/`).
"""

from __future__ import annotations

import re
from datetime import datetime

import pytest
import requests
from b24pysdk import BitrixApp, BitrixToken, BitrixWebhook, Client
from b24pysdk.api.requesters import BitrixOAuthRequester
from b24pysdk.credentials.auth import RenewedOAuth
from b24pysdk.errors import BitrixAPIExpiredToken
from b24pysdk.errors.oauth import BitrixOAuthInvalidClient, BitrixOAuthInvalidGrant

from tests.test_server import DEFAULT_SCOPES, Server


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("sdk")
    tls_dir = tmp / "tls"
    running = Server(tmp / "sdk.sqlite3", "fixtures/default.json", tls_dir=tls_dir)
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("REQUESTS_CA_BUNDLE", str(tls_dir / "ca.pem"))
        try:
            yield running
        finally:
            running.stop()


@pytest.fixture(scope="module")
def sdk(server) -> Client:
    return Client(BitrixWebhook(domain=f"127.0.0.1:{server.port}", webhook_token="1/devtoken"))


def test_typed_system_calls(sdk):
    now = sdk.server.time()
    assert isinstance(now.value, datetime) and now.value.tzinfo is not None
    assert sdk.profile().result["ID"] == "1" and sdk.profile().result["ADMIN"] is True
    assert sdk.scope().result == sorted(DEFAULT_SCOPES)
    assert "im" in sdk.scope(full=True).result
    assert sdk.method.get("im.notify.personal.add").result == {"isExisting": True,
                                                               "isAvailable": True}
    assert sdk.method.get("crm.deal.add").result == {"isExisting": False, "isAvailable": False}


def test_typed_user_calls(sdk):
    me = sdk.user.current().result
    assert me["ID"] == "1" and me["EMAIL"] == "admin@example.com" and me["ACTIVE"] is True
    active = sdk.user.get(filter={"ACTIVE": True}, sort="ID", order="DESC")
    assert [user["ID"] for user in active.result] == ["2", "1"]
    everyone = sdk.user.get()
    assert [user["ID"] for user in everyone.result] == ["1", "2", "3"]
    assert everyone.response.total == 3


def test_call_batch(sdk):
    batch = sdk.call_batch({
        "sent": sdk.im.notify.personal.add(user_id=2, message="from a batch"),
        "now": sdk.server.time(),
        "me": sdk.user.current(),
        "users": sdk.user.get(filter={"ID": 2}),
        "bad": sdk.im.notify.personal.add(user_id=2, message="  "),
    }).result
    assert isinstance(batch.result["sent"], int)
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\+00:00", batch.result["now"])
    assert batch.result["me"]["ID"] == "1"
    assert [user["ID"] for user in batch.result["users"]] == ["2"]
    assert batch.result_total == {"users": 1}
    assert batch.result_error["bad"]["error"] == "MESSAGE_EMPTY"
    assert set(batch.result_time) == {"sent", "now", "me", "users"}


def test_typed_notify_add_calls(sdk):
    personal = sdk.im.notify.personal.add(user_id=2, message="personal", tag="sdk-e2e").result
    system = sdk.im.notify.system.add(user_id=2, message="system").result
    assert isinstance(personal, int) and system > personal


def test_typed_notify_read_and_delete_calls(sdk):
    notify = sdk.im.notify
    first = notify.personal.add(user_id=1, message="one").result  # to self: the caller reads
    second = notify.system.add(user_id=1, message="two").result
    third = notify.personal.add(user_id=1, message="three").result

    def read_flags() -> dict:
        listed = notify.get().result["notifications"]
        return {int(item["id"]): item["notify_read"] for item in listed
                if int(item["id"]) in (first, second, third)}

    assert read_flags() == {first: "N", second: "N", third: "N"}
    assert notify.read(first, only_current=True).result is True
    assert read_flags() == {first: "Y", second: "N", third: "N"}
    assert notify.read.list([second]).result is True
    assert read_flags() == {first: "Y", second: "Y", third: "N"}
    assert notify.read(first, action=False, only_current=True).result is True
    assert read_flags()[first] == "N"
    everything = notify.read.all().result
    assert everything == {"result": True, "newCounter": 0}
    assert set(read_flags().values()) == {"Y"}
    assert notify.delete(bitrix_id=third).result is True
    assert third not in read_flags()
    assert notify.delete(bitrix_id=third).result is False  # nothing left to delete
    assert notify.delete(tag="never-used", client_id="ci").result is True


class EmulatorOAuthRequester(BitrixOAuthRequester):
    """b24pysdk's own requester, aimed at the emulator (the SDK hard-codes its OAuth host)."""

    token_url = ""

    @property
    def _OAUTH_TOKEN_URL(self):  # noqa: N802 (the SDK's attribute name)
        return self.token_url


class EmulatorApp(BitrixApp):
    """A BitrixApp whose refresh goes to the emulator; parsing and retry are the SDK's."""

    def refresh_oauth_token(self, refresh_token, **kwargs) -> RenewedOAuth:
        requester = EmulatorOAuthRequester(self, **kwargs)
        return RenewedOAuth.from_dict(requester.refresh_oauth_token(refresh_token))


def test_sdk_refreshes_an_expired_token_through_the_emulator(server):
    EmulatorOAuthRequester.token_url = f"{server.base}/oauth/token/"
    app = EmulatorApp(client_id="local.emulator.app", client_secret="devclientsecret")
    token = BitrixToken(domain=f"127.0.0.1:{server.port}", auth_token="expiredaccesstoken",
                        refresh_token="expiredrefreshtoken", bitrix_app=app)
    profile = token.call_method("profile")  # 401 expired_token -> refresh -> one retry
    assert profile["result"]["ID"] == "1"
    assert token.auth_token != "expiredaccesstoken"
    assert token.refresh_token not in (None, "expiredrefreshtoken")
    assert token.expires_in == 3600 and not token.has_expired
    sent = Client(token).im.notify.personal.add(user_id=2, message="after refresh").result
    assert isinstance(sent, int)

    with pytest.raises(BitrixOAuthInvalidGrant):  # the spent refresh token is refused
        app.refresh_oauth_token("expiredrefreshtoken")
    wrong = EmulatorApp(client_id="local.emulator.app", client_secret="not-the-secret")
    with pytest.raises(BitrixOAuthInvalidClient):
        wrong.refresh_oauth_token(token.refresh_token)
    renewed = app.refresh_oauth_token(token.refresh_token)  # still valid after the refusal
    assert renewed.user_id == 1 and renewed.scope == DEFAULT_SCOPES and renewed.status == "L"
    assert renewed.client_endpoint == f"{server.base}/rest/"


def test_without_a_refresh_token_the_sdk_reports_the_expiry(server):
    token = BitrixToken(domain=f"127.0.0.1:{server.port}", auth_token="expiredaccesstoken",
                        bitrix_app=BitrixApp(client_id="local.emulator.app",
                                             client_secret="devclientsecret"))
    with pytest.raises(BitrixAPIExpiredToken):
        token.call_method("profile")


def test_refresh_with_plain_requests(server):
    url = f"{server.base}/oauth/token/"
    grant = {"grant_type": "refresh_token", "client_id": "local.emulator.app",
             "client_secret": "devclientsecret", "refresh_token": "devrefreshtoken"}
    first = requests.get(url, params=grant, timeout=10)
    assert first.status_code == 200 and first.json()["expires_in"] == 3600
    reused = requests.post(url.rstrip("/"), data=grant, timeout=10)
    assert reused.status_code == 400 and reused.json()["error"] == "invalid_grant"
    call = requests.post(f"{server.base}/rest/server.time.json",
                         json={"auth": first.json()["access_token"]}, timeout=10)
    assert call.status_code == 200 and "result" in call.json()
