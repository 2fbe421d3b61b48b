"""im.notify.system.add and legacy im.notify share personal.add's handler (spec B 2.1-2.2)."""

from __future__ import annotations

import pytest


def latest(emulator, recipient: int = 2) -> dict:
    return emulator.notifications.for_recipient("default", recipient)[0]


def test_system_add_over_webhook_has_no_sender_and_no_prefix(rest, emulator):
    notification_id = rest.result("im.notify.system.add", {"USER_ID": 2, "MESSAGE": "build ok"})
    row = latest(emulator)
    assert row["id"] == notification_id
    assert (row["sender_id"], row["notify_type"], row["message"]) == (0, 4, "build ok")


def test_system_add_from_an_app_is_signed_with_its_name(client, emulator):
    response = client.post("/rest/im.notify.system.add", json={
        "USER_ID": 2, "MESSAGE": "build ok", "MESSAGE_OUT": "mail", "auth": "devaccesstoken"})
    assert isinstance(response.get_json()["result"], int)
    row = latest(emulator)
    assert row["message"] == "Emulator App\nbuild ok"
    assert row["message_out"] == "Emulator App\nmail"


def test_system_add_has_the_same_errors(rest):
    response = rest.webhook("im.notify.system.add", {"USER_ID": 2})
    assert response.status_code == 400 and response.get_json()["error"] == "MESSAGE_EMPTY"


@pytest.mark.parametrize("type_value, sender, notify_type", [
    ("SYSTEM", 0, 4), ("USER", 1, 2), ("system", 1, 2), (None, 1, 2), ("OTHER", 1, 2)])
def test_legacy_notify_type_is_case_sensitive(rest, emulator, type_value, sender, notify_type):
    params = {"TO": 2, "MESSAGE": "legacy"}
    if type_value is not None:
        params["TYPE"] = type_value
    rest.result("im.notify", params)
    row = latest(emulator)
    assert (row["sender_id"], row["notify_type"]) == (sender, notify_type)
