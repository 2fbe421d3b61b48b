"""Stubs end to end, over real HTTP, with real clients unmodified: the official Python SDK
(b24pysdk) and the JS SDK against `b24emu serve --tls` with stubs added through the control API,
fast-bitrix24 against the pytest plugin's emulator with stubs added through `b24emu.stub(...)`."""

from __future__ import annotations

import json
import os
import subprocess

import pytest
import requests
from b24emu.testing.client import EmulatorClient
from b24pysdk.errors import BitrixAPIError
from fast_bitrix24 import Bitrix

from tests.test_b24pysdk_e2e import sdk, server  # noqa: F401 (`b24emu serve --tls`, its client)
from tests.test_jssdk import JS_DIR, node  # noqa: F401 (the session fixture that installs the SDK)

DEALS = [{"ID": str(n), "TITLE": f"Deal {n}", "STAGE_ID": "WON" if n % 3 == 0 else "NEW",
          "OPPORTUNITY": str(n * 100)} for n in range(1, 121)]
DEAL = {"ID": "{{params.ID|str}}", "TITLE": "Deal {{params.ID}}", "STAGE_ID": "NEW",
        "ASSIGNED_BY_ID": "2", "OPPORTUNITY": "1500.00", "CURRENCY_ID": "EUR"}


@pytest.fixture(scope="module", autouse=True)
def stubs(server):  # noqa: F811
    """Deals stubbed on the HTTPS server, through the control API."""
    emulator = EmulatorClient(server.base, verify=server.verify)
    emulator.add_stubs([{"method": "crm.deal.list", "result": DEALS},
                        {"method": "crm.deal.get", "result": DEAL},
                        {"method": "crm.deal.get", "params": {"ID": 404}, "error": "NOT_FOUND",
                         "error_description": "Not found", "status": 400}])


def test_b24pysdk_typed_and_generic_calls(sdk):  # noqa: F811
    deal = sdk.crm.deal.get(bitrix_id=7).result
    assert deal == {"ID": "7", "TITLE": "Deal 7", "STAGE_ID": "NEW", "ASSIGNED_BY_ID": "2",
                    "OPPORTUNITY": "1500.00", "CURRENCY_ID": "EUR"}
    raw = sdk._bitrix_token.call_method("crm.deal.get", {"ID": 8})
    assert raw["result"]["TITLE"] == "Deal 8" and "operating" in raw["time"]
    with pytest.raises(BitrixAPIError) as refused:
        sdk.crm.deal.get(bitrix_id=404).result  # noqa: B018
    assert (refused.value.error, refused.value.error_description) == ("NOT_FOUND", "Not found")


def test_b24pysdk_list_helpers_walk_a_stubbed_list(sdk):  # noqa: F811
    paged = sdk.crm.deal.list(filter={"STAGE_ID": "WON"}).as_list().result
    assert [deal["ID"] for deal in paged] == [str(n) for n in range(3, 121, 3)]
    fast = list(sdk.crm.deal.list(select=["ID", "TITLE"]).as_list_fast().result)
    assert [deal["ID"] for deal in fast] == [str(n) for n in range(1, 121)]
    assert set(fast[0]) == {"ID", "TITLE"}


def test_js_sdk_call_list_over_a_stubbed_list(server, node):  # noqa: F811
    env = {**os.environ, "NODE_EXTRA_CA_CERTS": str(server.verify)}
    env["NO_PROXY"] = env["no_proxy"] = ",".join(
        filter(None, [os.environ.get("NO_PROXY"), "127.0.0.1", "localhost"]))
    done = subprocess.run([node, "stubs.mjs", f"{server.base}/rest/1/devtoken/"], cwd=JS_DIR,
                          env=env, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    report = json.loads(done.stdout)
    assert report["call_list"] == {"ok": True, "ids": list(range(1, 121)),
                                   "keys": ["ID", "TITLE"]}
    assert report["call_list_filtered"] == {"ok": True, "ids": list(range(3, 121, 3))}
    assert [len(chunk) for chunk in report["fetch_list"]] == [21]
    assert report["fetch_list"][0] == list(range(100, 121))
    assert report["deal"]["TITLE"] == "Deal 7"
    journal = requests.get(f"{server.base}/_emulator/journal", params={"method": "crm.deal.list"},
                           verify=server.verify).json()
    assert journal["total"] >= 6 and all(entry["stub_id"] for entry in journal["items"])


def test_fast_bitrix24_get_all_over_120_stubbed_items(b24emu):
    b24emu.stub("crm.deal.list", result=DEALS)
    client = Bitrix(b24emu.webhook_url, verbose=False)
    deals = client.get_all("crm.deal.list")
    assert sorted(int(deal["ID"]) for deal in deals) == list(range(1, 121))
    won = client.get_all("crm.deal.list", {"filter": {"STAGE_ID": "WON"}, "select": ["ID"]})
    assert sorted(int(deal["ID"]) for deal in won) == list(range(3, 121, 3))
    assert all(set(deal) == {"ID"} for deal in won)
    assert b24emu.stubs()[0]["hits"] >= 3  # three pages of the first walk at least


def test_fast_bitrix24_batch_mixes_a_stub_with_a_notification(b24emu):
    b24emu.stub("crm.deal.get", result=DEAL)
    client = Bitrix(b24emu.webhook_url, verbose=False)
    results = client.call_batch({"halt": 0, "cmd": {
        "deal": "crm.deal.get?ID=42",
        "note": "im.notify.personal.add?USER_ID=$result[deal][ASSIGNED_BY_ID]"
                "&MESSAGE=Deal $result[deal][ID] is $result[deal][STAGE_ID]"}})
    assert results["deal"]["TITLE"] == "Deal 42" and isinstance(results["note"], int)
    [note] = b24emu.notifications(recipient=2)
    assert note["message"] == "Deal 42 is NEW" and note["id"] == results["note"]
