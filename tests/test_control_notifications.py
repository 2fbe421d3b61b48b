"""The control API's notification endpoints: list, filter, count, read/unread, delete."""

from __future__ import annotations

import pytest

from tests.conftest import T0

API = "/_emulator/notifications"


def notify(rest, user_id=2, message="hi", **extra) -> int:
    return rest.result("im.notify.personal.add", {"USER_ID": user_id, "MESSAGE": message, **extra})


def items(client, query="") -> list[dict]:
    response = client.get(f"{API}{query}")
    assert response.status_code == 200, response.get_json()
    return response.get_json()["items"]


def test_list_shows_one_shape_newest_first(client, rest, clock):
    first = notify(rest, message="first [B]bold[/B]", TAG="build-1", SUB_TAG="grp",
                   ATTACH=[{"MESSAGE": "all green"}])
    clock.advance(5)
    second = rest.result("im.notify.system.add", {"USER_ID": 2, "MESSAGE": "system says"})
    page = client.get(API).get_json()
    assert page["total"] == 2 and page["limit"] == 50 and page["offset"] == 0
    assert page["next"] is None
    newest, oldest = page["items"]
    assert (newest["id"], oldest["id"]) == (second, first)
    assert newest["type"] == "system" and newest["notify_type"] == 4
    assert newest["sender_id"] == 0 and newest["tag"] == "" and newest["stored_tag"] == ""
    assert oldest["type"] == "personal" and oldest["notify_type"] == 2
    assert oldest["sender_id"] == 1 and oldest["recipient_id"] == 2
    assert oldest["message"] == "first [B]bold[/B]"
    assert oldest["tag"] == "build-1" and oldest["stored_tag"].startswith("MP|")
    assert oldest["stored_tag"].endswith("|build-1") and len(oldest["stored_tag"]) == 16
    assert oldest["sub_tag"] == "grp" and oldest["stored_sub_tag"].endswith("|grp")
    assert oldest["attach"]["BLOCKS"][0] == {"MESSAGE": "all green"}
    assert oldest["created_at"] == T0 and oldest["created"] == "2026-01-01T00:00:00+00:00"
    assert oldest["read"] is False and oldest["read_at"] is None
    assert oldest["method"] == "im.notify.personal.add"
    assert oldest["auth_type"] == "apauth" and oldest["credential"] == "1"
    assert oldest["portal"] == "default" and oldest["module"] == "rest"
    assert len(oldest["request_id"]) == 16
    assert client.get(f"{API}/{first}").get_json() == oldest


def test_filters_select_what_they_name(client, rest, clock):
    a = notify(rest, 2, "deploy done", TAG="deploy")
    clock.advance(100)
    b = notify(rest, 1, "Build 100% passed", TAG="build", SUB_TAG="ci")
    c = rest.result("im.notify.system.add", {"USER_ID": 2, "MESSAGE": "nightly"})
    client.post(f"{API}/{a}/read")

    def ids(query):
        return [item["id"] for item in items(client, query)]

    assert ids("?recipient=2") == [c, a]
    assert ids("?sender=1") == [b, a]
    assert ids("?sender=0") == [c]
    assert ids("?tag=build") == [b]
    stored = client.get(f"{API}/{b}").get_json()["stored_tag"]
    assert ids(f"?stored_tag={stored.replace('|', '%7C')}") == [b]
    assert ids("?stored_tag=build") == []
    assert ids("?sub_tag=ci") == [b]
    assert ids("?type=system") == [c] and ids("?type=4") == [c]
    assert ids("?type=personal") == [b, a] and ids("?type=2") == [b, a]
    assert ids("?read=true") == [a] and ids("?read=false") == [c, b]
    assert ids(f"?since={T0 + 50}") == [c, b]
    assert ids("?since=2026-01-01T00:01:00Z") == [c, b]
    assert ids("?since=2026-01-01T01:01:00+01:00") == [c, b]  # "+" unencoded: a space
    assert ids("?since=2026-01-01T01:01:00%2B01:00") == [c, b]
    assert ids("?since=2026-01-01T00:00:00") == [c, b, a]  # naive: the portal's zone (UTC)
    assert ids("?text=100%25") == [b]
    assert ids("?text=BUILD") == [b]
    assert ids(f"?after_id={a}") == [c, b]
    assert ids("?recipient=2&type=personal&read=true") == [a]
    count = client.get(f"{API}/count?recipient=2").get_json()
    assert count == {"count": 2}
    assert client.get(f"{API}/count").get_json() == {"count": 3}


def test_paging_gives_next(client, rest):
    created = [notify(rest, message=f"n{i}") for i in range(5)]
    page = client.get(f"{API}?limit=2").get_json()
    assert [i["id"] for i in page["items"]] == created[::-1][:2]
    assert page["total"] == 5 and page["next"] == 2
    last = client.get(f"{API}?limit=2&offset=4").get_json()
    assert [i["id"] for i in last["items"]] == [created[0]] and last["next"] is None


def test_read_and_unread(client, rest, clock):
    first, second = notify(rest), notify(rest)
    clock.advance(30)
    reply = client.post(f"{API}/{first}/read")
    assert reply.status_code == 200 and reply.get_json() == {"changed": 1}
    item = client.get(f"{API}/{first}").get_json()
    assert item["read"] is True and item["read_at"] == T0 + 30
    # the REST counter agrees (seen = read in Bitrix's model)
    assert client.post(f"{API}/{first}/read", json={"read": True}).get_json() == {"changed": 0}
    assert client.post(f"{API}/{first}/read", json={"read": False}).get_json() == {"changed": 1}
    assert client.get(f"{API}/{first}").get_json()["read_at"] is None
    assert client.post(f"{API}/read?recipient=2", json={"read": True}).get_json() == {
        "changed": 2}
    assert client.get(f"{API}/count?read=false").get_json() == {"count": 0}
    assert client.post(f"{API}/read", json={"read": False}).get_json() == {"changed": 2}
    assert client.post(f"{API}/{second}/read", json={"read": "yes"}).status_code == 400
    assert client.post("/_emulator/notifications/999/read").status_code == 404


def test_delete_one_filtered_and_all(client, rest):
    a = notify(rest, 2, "x", TAG="keep")
    b = notify(rest, 2, "y", TAG="drop")
    notify(rest, 1, "z")
    assert client.delete(f"{API}/{a}").get_json() == {"deleted": 1}
    missing = client.delete(f"{API}/{a}")
    assert missing.status_code == 404 and missing.get_json()["error"] == "not_found"
    assert client.get(f"{API}/{a}").status_code == 404
    assert client.delete(f"{API}?tag=drop").get_json() == {"deleted": 1}
    assert client.get(f"{API}/{b}").status_code == 404
    assert client.delete(f"{API}?tag=typo-does-not-exist").get_json() == {"deleted": 0}
    assert client.delete(API).get_json() == {"deleted": 1}
    assert client.get(API).get_json()["total"] == 0


def test_a_typo_in_a_filter_deletes_nothing(client, rest):
    notify(rest)
    reply = client.delete(f"{API}?recipent=2")
    assert reply.status_code == 400
    assert reply.get_json() == {"error": "invalid_parameter",
                                "error_description": "recipent: Unknown field."}
    assert client.get(f"{API}/count").get_json() == {"count": 1}


@pytest.mark.parametrize("query", [
    "recipient=abc", "recipient=0", "recipient=99999999999999999999999", "sender=-1",
    "type=robot", "type=99", "read=maybe", "since=yesterday", "since=nan", "since=inf",
    "since=-5", "since=0001-01-01T00:00:00", "limit=0", "limit=1001", "offset=-1",
    "after_id=x", "limit=1&limit=2",
    "text=" + "x" * 10001,
])
def test_bad_filters_are_400_with_the_field(client, rest, query):
    notify(rest)
    for method, path in (("get", API), ("get", f"{API}/count"), ("delete", API),
                         ("post", f"{API}/read")):
        reply = getattr(client, method)(f"{path}?{query}")
        if "limit" in query or "offset" in query:
            if path != API or method != "get":
                continue  # paging only on the list
        assert reply.status_code == 400, (method, path, query, reply.get_data(as_text=True))
        body = reply.get_json()
        assert body["error"] == "invalid_parameter"
        assert body["error_description"].split(":")[0] == query.split("=")[0]
    assert client.get(f"{API}/count").get_json() == {"count": 1}


@pytest.mark.parametrize("value", [
    "' OR 1=1 --", "%", "_", "%25", "x' ; DROP TABLE notifications; --", "\\", "\"",
    "a" * 5000, "nul\x00byte", "MP|%|%", "☃", "<script>alert(1)</script>",
])
def test_hostile_filter_values_match_literally(client, rest, value):
    notify(rest, message="plain", TAG="plain")
    for name in ("tag", "stored_tag", "sub_tag", "stored_sub_tag", "text"):
        for method, path in (("get", API), ("get", f"{API}/count"), ("delete", API),
                             ("post", f"{API}/read")):
            reply = getattr(client, method)(path, query_string={name: value})
            assert reply.status_code in (200, 400), (name, value, reply.status_code)
            if reply.status_code == 200:
                body = reply.get_json()
                assert body.get("total", 0) == 0 and body.get("count", 0) == 0
                assert body.get("deleted", 0) == 0 and body.get("changed", 0) == 0
    for name in ("recipient", "sender", "type", "read", "since", "after_id", "portal"):
        reply = client.get(API, query_string={name: value})
        assert reply.status_code in (400, 404), (name, value)
    assert client.get(f"{API}/count").get_json() == {"count": 1}
    assert rest.result("im.notify.personal.add", {"USER_ID": 2, "MESSAGE": "still works"})


@pytest.mark.parametrize("path", ["abc", "-1", "1.5", "99999999999999999999999", "%00", "0"])
def test_bad_ids_are_404(client, path):
    for method in ("get", "delete"):
        reply = getattr(client, method)(f"{API}/{path}")
        assert reply.status_code == 404 and reply.get_json()["error"] == "not_found"
    assert client.post(f"{API}/{path}/read").status_code == 404


def test_bad_json_bodies_are_400(client, rest):
    item = notify(rest)
    for body in (b"{", b"[1]", b'"x"', b"null", b'{"read": true, "extra": 1}'):
        reply = client.post(f"{API}/{item}/read", data=body,
                            content_type="application/json")
        assert reply.status_code == 400, body
        assert reply.get_json()["error"] == "invalid_parameter"


def test_unknown_portal_is_404(client):
    reply = client.get(f"{API}?portal=nope")
    assert reply.status_code == 404
    assert reply.get_json() == {"error": "portal_not_found",
                                "error_description": "No portal named 'nope'"}
