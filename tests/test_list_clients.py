"""Real, unmodified clients walk the emulator's lists over HTTP, each its own way:
fast_bitrix24's get_all pages with `start`; b24pysdk's `as_list` pages with `start` in batches
and `as_list_fast` walks by ID (`>ID` filter, ID order, `start=-1`, stop on a short page).
(The official JS SDK's callList/fetchList walk user.get by ID in tests/test_jssdk.py.)"""

from __future__ import annotations

import json

import pytest
import requests
from b24pysdk import BitrixWebhook, Client
from fast_bitrix24 import Bitrix

from tests.conftest import ROOT
from tests.test_server import Server

USERS = range(10, 130)  # with the default portal's 1-3: 123 users, three pages
DEPARTMENTS = range(100, 160)  # with the default portal's 1-3: 63 departments, two pages


def portal_file(tmp_path) -> str:
    portal = json.loads((ROOT / "fixtures" / "default.json").read_text())
    portal["users"] += [{"id": i, "name": f"User {i}", "departments": [2],
                         "PERSONAL_CITY": "Paris" if i % 3 == 0 else "Oslo"} for i in USERS]
    portal["departments"] += [{"id": i, "name": f"Team {i}", "parent": 2} for i in DEPARTMENTS]
    portal["webhooks"].append({"id": 9, "user_id": 1, "code": "listtoken",
                               "scopes": ["user", "department"]})
    path = tmp_path / "lists.json"
    path.write_text(json.dumps(portal))
    return str(path)


EVERY_USER = [1, 2, 3, *USERS]
EVERY_DEPARTMENT = [1, 2, 3, *DEPARTMENTS]


@pytest.fixture(scope="module")
def http_server(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("lists")
    running = Server(tmp / "lists.sqlite3", portal_file(tmp))
    yield running
    running.stop()


@pytest.fixture(scope="module")
def sdk(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("lists-tls")
    tls_dir = tmp / "tls"
    running = Server(tmp / "lists.sqlite3", portal_file(tmp), tls_dir=tls_dir)
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("REQUESTS_CA_BUNDLE", str(tls_dir / "ca.pem"))
        try:
            client = Client(BitrixWebhook(domain=f"127.0.0.1:{running.port}",
                                          webhook_token="1/listtoken"))
            client.server_base = running.base  # for the journal
            yield client
        finally:
            running.stop()


def test_fast_bitrix24_get_all_pages_with_start(http_server):
    client = Bitrix(f"{http_server.base}/rest/1/listtoken/", verbose=False)
    users = client.get_all("user.get")
    assert sorted(int(user["ID"]) for user in users) == EVERY_USER
    parisians = client.get_all("user.get", {"filter": {"PERSONAL_CITY": "Paris"}})
    assert sorted(int(user["ID"]) for user in parisians) == [i for i in USERS if i % 3 == 0]
    departments = client.get_all("department.get")
    assert sorted(int(department["ID"]) for department in departments) == EVERY_DEPARTMENT


def test_b24pysdk_as_list_pages_with_start(sdk):
    users = sdk.user.get().as_list().result
    assert [int(user["ID"]) for user in users] == EVERY_USER
    departments = sdk.department.get().as_list().result
    assert sorted(int(department["ID"]) for department in departments) == EVERY_DEPARTMENT


def test_b24pysdk_as_list_fast_walks_by_id(sdk):
    users = sdk.user.get(filter={"PERSONAL_CITY": "Oslo"}).as_list_fast().result
    assert [int(user["ID"]) for user in users] == [i for i in USERS if i % 3]
    newest_first = sdk.user.get().as_list_fast(descending=True).result
    assert [int(user["ID"]) for user in newest_first] == EVERY_USER[::-1]
    departments = sdk.department.get().as_list_fast().result
    assert [int(department["ID"]) for department in departments] == EVERY_DEPARTMENT
    # what the SDK sent: ID windows without the count
    journal = requests.get(f"{sdk.server_base}/_emulator/journal",
                           params={"method": "batch", "limit": 1}, timeout=10).json()
    commands = list(journal["items"][0]["params"]["cmd"].values())
    assert all("%3EID=" in command and command.endswith("start=-1") for command in commands)
