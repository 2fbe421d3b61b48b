"""The REST plumbing: URL shapes, parameter sources, envelope, XML, headers, failures."""

from __future__ import annotations

import pytest

SEND = {"USER_ID": "2", "MESSAGE": "hi"}
QUERY = "USER_ID=2&MESSAGE=hi"


@pytest.mark.parametrize("path", [
    "/rest/1/devtoken/im.notify.personal.add.json",
    "/rest/1/devtoken/im.notify.personal.add",
    "/rest/1/devtoken/im.notify.personal.add/",
    "/rest/1/devtoken/im.notify.personal.add.json/",
    "/rest/1/devtoken/IM.Notify.Personal.Add.JSON",
    "/rest/1/devtoken//im.notify.personal.add",
    "/rest//1/devtoken/im.notify.personal.add",
    "/rest/admin/devtoken/im.notify.personal.add",
])
def test_webhook_url_shapes(client, path):
    response = client.get(f"{path}?{QUERY}")
    assert response.status_code == 200, response.data
    assert isinstance(response.get_json()["result"], int)


@pytest.mark.parametrize("path", [
    "/rest/im.notify.personal.add.json",
    "/rest/im.notify.personal.add",
    "/rest/im.notify.personal.add/",
    "/rest//im.notify.personal.add",
    "/rest/IM.NOTIFY.PERSONAL.ADD",
])
def test_oauth_url_shapes(client, path):
    response = client.post(path, json={**SEND, "auth": "devaccesstoken"})
    assert response.status_code == 200, response.data
    assert isinstance(response.get_json()["result"], int)


def test_xml_transport(client):
    response = client.get(f"/rest/1/devtoken/im.notify.personal.add.xml?{QUERY}")
    assert response.status_code == 200
    assert response.headers["Content-Type"] == "text/xml; charset=utf-8"
    text = response.get_data(as_text=True)
    # PHP prints a whole float without ".0" in XML.
    # No `<?xml …?>` prolog: the answer starts with <response> (spec B 7.2).
    assert text.startswith('<response><result>1</result>'
                           "<time><start>1767225600</start>")
    assert "<date_start>2026-01-01T00:00:00+00:00</date_start>" in text
    assert text.endswith("<operating>0</operating></time></response>")


def test_xml_error_and_false(client):
    error = client.get("/rest/1/devtoken/im.notify.personal.add.xml?MESSAGE=x")
    assert error.status_code == 400
    assert error.get_data(as_text=True) == (
        "<response><error>USER_ID_EMPTY</error>"
        "<error_description>User ID can&apos;t be empty</error_description></response>")
    false = client.get("/rest/1/devtoken/im.notify.personal.add.xml?USER_ID=999&MESSAGE=x")
    assert false.get_data(as_text=True).startswith("<response><result></result><time>")


@pytest.mark.parametrize("path", [
    "/rest/1/devtoken/no.such.method",
    "/rest/1/wrongtoken/no.such.method",
    "/rest/no.such.method",
    "/rest/no.such.method.json?auth=garbage",
    "/rest/",
    "/rest/a/b",
])
def test_unknown_method_is_404_before_auth(client, path):
    response = client.post(path)
    assert response.status_code == 404
    assert response.get_json() == {"error": "ERROR_METHOD_NOT_FOUND",
                                   "error_description": "Method not found!"}


def test_unknown_method_xml(client):
    response = client.get("/rest/1/devtoken/nope.xml")
    assert response.status_code == 404
    assert response.headers["Content-Type"] == "text/xml; charset=utf-8"


def test_form_body(client):
    response = client.post("/rest/1/devtoken/im.notify.personal.add", data=SEND)
    assert isinstance(response.get_json()["result"], int)


def test_multipart_body(client):
    response = client.post("/rest/1/devtoken/im.notify.personal.add", data=SEND,
                           content_type="multipart/form-data")
    assert isinstance(response.get_json()["result"], int)


def test_raw_urlencoded_body_without_content_type(client):
    response = client.post("/rest/1/devtoken/im.notify.personal.add", data=QUERY.encode(),
                           content_type="text/plain")
    assert isinstance(response.get_json()["result"], int)


def test_body_wins_over_query(client, emulator):
    client.post("/rest/1/devtoken/im.notify.personal.add?USER_ID=1&MESSAGE=query",
                json={"MESSAGE": "body", "USER_ID": 2})
    [row] = emulator.notifications.for_recipient("default", 2)
    assert row["message"] == "body"


def test_query_fills_what_body_lacks(client, emulator):
    client.post("/rest/1/devtoken/im.notify.personal.add?USER_ID=2", json={"MESSAGE": "body"})
    assert len(emulator.notifications.for_recipient("default", 2)) == 1


def test_invalid_json_counts_as_empty(client):
    response = client.post("/rest/1/devtoken/im.notify.personal.add?USER_ID=2",
                           data=b'{"MESSAGE": "x"', content_type="application/json")
    assert response.get_json()["error"] == "MESSAGE_EMPTY"


def test_unknown_parameters_are_ignored(client):
    response = client.post(
        "/rest/1/devtoken/im.notify.personal.add?bx24_request_id=1&bx24_sdk_ver=2&start=0",
        json={**SEND, "__order": "x", "FOO": {"BAR": 1}})
    assert isinstance(response.get_json()["result"], int)


def test_cors_and_security_headers(client):
    response = client.get(f"/rest/1/devtoken/im.notify.personal.add?{QUERY}")
    assert response.headers["Access-Control-Allow-Origin"] == "*"
    assert response.headers["Access-Control-Allow-Headers"] == "origin, content-type, accept"
    assert response.headers["X-Content-Type-Options"] == "nosniff"


def test_options_preflight(client):
    response = client.options("/rest/1/devtoken/im.notify.personal.add")
    assert response.status_code == 200
    assert response.headers["Access-Control-Allow-Origin"] == "*"


def test_oversized_body_is_refused(client, emulator):
    big = b"x" * (emulator.settings.max_body_bytes + 1)
    response = client.post("/rest/1/devtoken/im.notify.personal.add", data=big,
                           content_type="application/json")
    assert response.status_code == 413
    assert response.get_json()["error"] == "REQUEST_ENTITY_TOO_LARGE"
    assert emulator.notifications.count("default") == 0


def test_unexpected_failure_is_bitrix_500_and_data_is_intact(client, emulator, monkeypatch,
                                                              caplog):
    keep = client.post("/rest/1/devtoken/im.notify.personal.add", json=SEND).get_json()["result"]

    def broken_insert(*args, **kwargs):
        raise RuntimeError("disk on fire")

    original = emulator.notifications.add

    def add_then_fail(notification):
        with emulator.database.write() as db:
            db.execute("DELETE FROM notifications")
            broken_insert()
        return original(notification)

    monkeypatch.setattr(emulator.notifications, "add", add_then_fail)
    response = client.post("/rest/1/devtoken/im.notify.personal.add", json=SEND)
    assert response.status_code == 500
    assert response.get_json() == {"error": "INTERNAL_SERVER_ERROR",
                                   "error_description": "Internal server error"}
    assert "disk on fire" in caplog.text and "Traceback" in caplog.text
    assert [row["id"] for row in emulator.notifications.for_recipient("default", 2)] == [keep]


def test_php_json_escaping_on_the_wire(client):
    # A PHP-style body: no spaces, escaped slashes in dates are absent, floats kept as floats.
    raw = client.get(f"/rest/1/devtoken/im.notify.personal.add?{QUERY}").get_data()
    assert raw.startswith(b'{"result":1,"time":{"start":1767225600.0,"finish":1767225600.0,')
    assert raw.isascii()
