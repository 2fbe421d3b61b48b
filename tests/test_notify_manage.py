"""im.notify.delete/read/read.list/read.all/answer/confirm/get/history.search/schema.get and
im.counters.get (spec B 2.3-2.11), over webhook, OAuth and batch."""

from __future__ import annotations

import hashlib

import pytest
from b24emu.store.notifications import NewNotification

from tests.conftest import T0


def send(rest, recipient=1, message="hello", **params) -> int:
    """A personal notification from user 1 (webhook) to `recipient`."""
    return rest.result("im.notify.personal.add", {"USER_ID": recipient, "MESSAGE": message,
                                                  **params})


def send_as_bob(rest, recipient=1, message="from bob", **params) -> int:
    return rest.result("im.notify.personal.add",
                       {"USER_ID": recipient, "MESSAGE": message, **params},
                       user=2, code="bobimtoken")


def stored_ids(emulator, recipient=None) -> list[int]:
    rows = emulator.notifications.query("default")
    return [row["id"] for row in rows if recipient is None or row["recipient_id"] == recipient]


def error_of(response):
    return response.status_code, response.get_json()["error"], \
        response.get_json()["error_description"]


def key(source: str) -> str:
    return hashlib.md5(source.encode()).hexdigest()[:5]


# --- im.notify.delete ---------------------------------------------------------------------


def test_delete_by_id_removes_own_notification(rest, emulator):
    notification = send(rest)
    assert rest.result("im.notify.delete", {"ID": notification}) is True
    assert stored_ids(emulator) == []
    assert rest.result("im.notify.delete", {"ID": notification}) is False


def test_delete_by_id_of_someone_elses_notification_is_false(rest, emulator):
    to_bob = send(rest, recipient=2)  # user 1 sent it, but it lives in Bob's chat
    assert rest.result("im.notify.delete", {"ID": to_bob}) is False
    assert stored_ids(emulator) == [to_bob]


def test_delete_by_id_array(rest, emulator):
    mine = [send(rest) for _ in range(2)]
    bobs = send(rest, recipient=2)
    assert rest.result("im.notify.delete", {"ID": [*mine, bobs]}) is True
    assert stored_ids(emulator) == [bobs]
    assert rest.result("im.notify.delete", {"ID": [bobs]}) is False


def test_delete_by_tag_is_global_and_per_app(rest, emulator):
    for recipient in (1, 2):
        send(rest, recipient=recipient, TAG="build", CLIENT_ID="ci")
    other_app = send(rest, recipient=2, TAG="build", CLIENT_ID="other")
    oauth_app = rest.oauth("im.notify.personal.add",
                           {"USER_ID": 2, "MESSAGE": "x", "TAG": "build"}).get_json()["result"]
    assert rest.result("im.notify.delete", {"TAG": "build", "CLIENT_ID": "ci"}) is True
    assert sorted(stored_ids(emulator)) == sorted([other_app, oauth_app])
    assert emulator.notifications.get("default", other_app)["notify_tag"] == \
        f"MP|{key('customother')}|build"
    # Nothing left to match: still true.
    assert rest.result("im.notify.delete", {"TAG": "build", "CLIENT_ID": "ci"}) is True


def test_delete_by_tag_over_oauth_uses_the_apps_client_id(rest, emulator):
    webhook_one = send(rest, recipient=2, TAG="t", CLIENT_ID="ci")
    rest.oauth("im.notify.personal.add", {"USER_ID": 2, "MESSAGE": "x", "TAG": "t"})
    response = rest.oauth("im.notify.delete", {"TAG": "t"})
    assert response.status_code == 200 and response.get_json()["result"] is True
    assert stored_ids(emulator) == [webhook_one]


def test_delete_by_sub_tag(rest, emulator):
    send(rest, recipient=2, SUB_TAG="group", CLIENT_ID="ci")
    send(rest, recipient=1, SUB_TAG="group", CLIENT_ID="ci")
    keep = send(rest, recipient=1, SUB_TAG="other", CLIENT_ID="ci")
    send(rest, recipient=1, SUB_TAG="group", CLIENT_ID="other")
    assert rest.result("im.notify.delete", {"SUB_TAG": "group", "CLIENT_ID": "ci"}) is True
    assert len(stored_ids(emulator)) == 2 and keep in stored_ids(emulator)


def test_delete_webhook_without_client_id_is_access_denied(rest):
    response = rest.webhook("im.notify.delete", {"TAG": "build"})
    assert error_of(response) == (403, "ACCESS_DENIED", "Access denied! Client ID not specified")
    assert "time" not in response.get_json()


@pytest.mark.parametrize("call", ["webhook", "oauth"])
def test_delete_without_id_tag_or_sub_tag_is_params_error(rest, call):
    params = {"CLIENT_ID": "ci"} if call == "webhook" else {}
    response = getattr(rest, call)("im.notify.delete", params)
    assert error_of(response) == (400, "PARAMS_ERROR", "Incorrect params")


# --- im.notify.read / read.list / read.all and im.counters.get -----------------------------


def counters(rest, **params):
    return rest.result("im.counters.get", params)


def unread(emulator, user=1) -> list[int]:
    rows = emulator.notifications.query("default")
    return sorted(row["id"] for row in rows if row["recipient_id"] == user and not row["is_read"])


def test_read_marks_that_id_and_all_newer_ones(rest, emulator):
    a, b, c = (send(rest) for _ in range(3))
    assert rest.result("im.notify.read", {"ID": b}) is True
    assert unread(emulator) == [a]
    assert emulator.notifications.get("default", b)["read_at"] == T0


def test_read_only_current(rest, emulator):
    a, b, c = (send(rest) for _ in range(3))
    assert rest.result("im.notify.read", {"ID": b, "ONLY_CURRENT": "Y"}) is True
    assert unread(emulator) == [a, c]


def test_read_action_n_unreads(rest, emulator):
    a, b = send(rest), send(rest)
    rest.result("im.notify.read", {"ID": 0})  # ID 0 with Y: everything
    assert unread(emulator) == []
    assert rest.result("im.notify.read", {"ID": b, "ACTION": "N", "ONLY_CURRENT": "Y"}) is True
    assert unread(emulator) == [b]
    rest.result("im.notify.read", {"ID": a, "ACTION": "N"})
    assert unread(emulator) == [a, b]


def test_read_without_id_changes_nothing(rest, emulator):
    send(rest)
    assert rest.result("im.notify.read", {}) is True
    assert rest.result("im.notify.read", {"ID": -5}) is True
    assert len(unread(emulator)) == 1


def test_read_never_touches_other_users_notifications(rest, emulator):
    to_bob = send(rest, recipient=2)
    rest.result("im.notify.read", {"ID": 0})
    rest.result("im.notify.read.list", {"IDS": [to_bob]})
    assert unread(emulator, user=2) == [to_bob]


def test_read_list_then_counters(rest, emulator):
    a, b, c = (send(rest) for _ in range(3))
    assert counters(rest)["TYPE"]["NOTIFY"] == 3
    assert rest.result("im.notify.read.list", {"IDS": [a, c]}) is True
    result = counters(rest)
    assert result["TYPE"] == {"ALL": 1, "NOTIFY": 1, "CHAT": 0, "LINES": 0, "DIALOG": 0,
                              "MESSENGER": 0}
    assert rest.result("im.notify.read.list", {"IDS": [a], "ACTION": "N"}) is True
    assert unread(emulator) == [a, b]


def test_read_list_stops_at_the_first_non_positive_id(rest, emulator):
    a, b = send(rest), send(rest)
    assert rest.result("im.notify.read.list", {"IDS": [a, 0, b]}) is True
    assert unread(emulator) == [b]


def test_read_list_form_encoded_array(client, emulator, rest):
    a = send(rest)
    response = client.post("/rest/1/devtoken/im.notify.read.list", data={"IDS[]": [str(a)]})
    assert response.get_json()["result"] is True
    assert unread(emulator) == []


@pytest.mark.parametrize("ids", [None, "5", 5, ""])
def test_read_list_needs_an_array(rest, ids):
    params = {} if ids is None else {"IDS": ids}
    response = rest.webhook("im.notify.read.list", params)
    assert error_of(response) == (400, "PARAMS_ERROR", "No IDS param or it is not an array")


def test_read_all_reports_the_new_counter(rest, emulator):
    send(rest), send(rest)
    send(rest, recipient=2)
    assert rest.result("im.notify.read.all") == {"result": True, "newCounter": 0}
    assert unread(emulator) == [] and len(unread(emulator, user=2)) == 1


def test_counters_full_shape_and_empty_maps(rest, client):
    send(rest)
    response = rest.webhook("im.counters.get")
    body = response.get_data(as_text=True)
    assert '"CHAT":[]' in body and '"DIALOG_UNREAD":[]' in body
    result = response.get_json()["result"]
    assert list(result) == ["TYPE", "CHAT", "CHAT_MUTED", "CHAT_UNREAD", "LINES", "DIALOG",
                            "DIALOG_UNREAD"]
    assert result["TYPE"]["ALL"] == result["TYPE"]["NOTIFY"] == 1


def test_counters_params_are_case_sensitive(rest):
    assert list(counters(rest, ONLY_COUNTER="Y")) == ["TYPE"]
    assert len(counters(rest, only_counter="Y")) == 7  # lower case is not the parameter
    lowered = counters(rest, JSON="Y", ONLY_COUNTER="Y")
    assert lowered == {"type": {"all": 0, "notify": 0, "chat": 0, "lines": 0, "dialog": 0,
                                "messenger": 0}}
    assert "TYPE" in counters(rest, json="Y")


def test_counters_over_oauth(rest):
    send(rest)
    response = rest.oauth("im.counters.get")
    assert response.get_json()["result"]["TYPE"]["NOTIFY"] == 1


# --- im.notify.answer / im.notify.confirm --------------------------------------------------


def test_answer_own_notification(rest):
    notification = send_as_bob(rest)
    result = rest.result("im.notify.answer", {"ID": notification, "ANSWER_TEXT": "Thanks"})
    assert result == {"result_message": ["Your response has been successfully sent."]}
    result = rest.result("im.notify.answer", {"NOTIFY_ID": notification, "ANSWER_TEXT": "ok"})
    assert result["result_message"] == ["Your response has been successfully sent."]


def test_answer_foreign_missing_or_blank_is_false(rest):
    to_bob = send(rest, recipient=2)
    mine = send(rest)
    for params in ({"ID": to_bob, "ANSWER_TEXT": "x"}, {"ID": 999999, "ANSWER_TEXT": "x"},
                   {"ID": mine, "ANSWER_TEXT": "   "}):
        assert rest.result("im.notify.answer", params) == {"result_message": False}


def test_answer_id_wins_over_notify_id(rest):
    mine = send(rest)
    result = rest.result("im.notify.answer",
                         {"ID": 999999, "NOTIFY_ID": mine, "ANSWER_TEXT": "x"})
    assert result == {"result_message": False}


@pytest.mark.parametrize("method_name, params, code, description", [
    ("im.notify.answer", {"ANSWER_TEXT": "x"}, "ID_ERROR", "Notification ID can't be empty"),
    ("im.notify.answer", {"ID": "abc", "ANSWER_TEXT": "x"}, "ID_ERROR",
     "Notification ID can't be empty"),
    ("im.notify.answer", {"ID": 5}, "ANSWER_TEXT_ERROR", "ANSWER_TEXT can't be empty"),
    ("im.notify.confirm", {"NOTIFY_VALUE": "Y"}, "ID_ERROR", "Notification ID can't be empty"),
    ("im.notify.confirm", {"ID": 5}, "NOTIFY_VALUE_ERROR", "Notification Value  can't be empty"),
])
def test_answer_and_confirm_errors(rest, method_name, params, code, description):
    assert error_of(rest.webhook(method_name, params)) == (400, code, description)


def test_confirm_on_rest_notifications_is_false_and_keeps_them(rest, emulator):
    mine = send_as_bob(rest)
    result = rest.result("im.notify.confirm", {"ID": mine, "NOTIFY_VALUE": "Y"})
    assert result == {"result_message": False}
    assert stored_ids(emulator) == [mine]


# --- im.notify.get ---------------------------------------------------------------------------


def test_get_shape(rest, emulator):
    bobs = send_as_bob(rest, message="Build [B]ok[/B]", TAG="t", CLIENT_ID="ci")
    system = rest.result("im.notify.system.add", {"USER_ID": 1, "MESSAGE": "sys"})
    rest.result("im.notify.read", {"ID": system, "ONLY_CURRENT": "Y"})
    result = rest.result("im.notify.get")
    assert list(result) == ["total_count", "total_unread_count", "chat_id", "notifications",
                            "users"]
    assert (result["total_count"], result["total_unread_count"]) == (2, 1)
    first, second = result["notifications"]
    assert [first["id"], second["id"]] == [system, bobs]
    assert list(second) == ["id", "chat_id", "author_id", "date", "notify_type", "notify_module",
                            "notify_event", "notify_tag", "notify_sub_tag", "notify_title",
                            "setting_name", "text", "notify_read", "params"]
    assert second["chat_id"] == result["chat_id"] == first["chat_id"]
    assert (second["author_id"], second["notify_type"], second["notify_read"]) == (2, 2, "N")
    assert (first["author_id"], first["notify_type"], first["notify_read"]) == (0, 4, "Y")
    assert second["notify_tag"] == f"MP|{key('customci')}|t"
    assert (second["notify_module"], second["notify_event"], second["setting_name"]) == (
        "rest", "rest_notify", "rest|rest_notify")
    assert second["text"] == "Build [B]ok[/B]" and second["params"] is None
    assert second["date"] == "2026-01-01T00:00:00+00:00"
    assert [user["id"] for user in result["users"]] == [2]
    bob = result["users"][0]
    assert (bob["name"], bob["first_name"], bob["last_name"], bob["type"]) == (
        "Bob Builder", "Bob", "Builder", "user")
    assert list(bob) == ["id", "active", "name", "first_name", "last_name", "work_position",
                         "color", "avatar", "avatar_hr", "gender", "birthday", "extranet",
                         "network", "bot", "connector", "external_auth_id", "status", "idle",
                         "last_activity_date", "mobile_last_date", "desktop_last_date", "absent",
                         "departments", "phones", "bot_data", "type", "website", "email"]
    assert bob["active"] is True and bob["color"].startswith("#")


def test_get_chat_id_differs_per_user(rest):
    send(rest)
    send_as_bob(rest, recipient=2)
    mine = rest.result("im.notify.get")["chat_id"]
    bobs = rest.result("im.notify.get", user=2, code="bobimtoken")["chat_id"]
    assert mine != bobs and rest.result("im.notify.get")["chat_id"] == mine


def test_get_convert_text_escapes_html(rest):
    send(rest, message="<script>x</script> [B]bold[/B]\nnext")
    text = rest.result("im.notify.get", {"CONVERT_TEXT": "Y"})["notifications"][0]["text"]
    assert text == "&lt;script&gt;x&lt;/script&gt; <b>bold</b><br />next"


def test_get_with_nothing_returns_only_lists(rest):
    assert rest.result("im.notify.get") == {"notifications": [], "users": []}


def test_get_paging(rest):
    sent = [send(rest, message=str(n)) for n in range(5)]
    page = rest.result("im.notify.get", {"LIMIT": 2})["notifications"]
    assert [item["id"] for item in page] == [sent[4], sent[3]]
    page = rest.result("im.notify.get", {"LIMIT": 2, "LAST_ID": page[-1]["id"], "LAST_TYPE": 3})
    assert [item["id"] for item in page["notifications"]] == [sent[2], sent[1]]
    assert page["total_count"] == 5


def test_get_limit_is_capped_at_50(rest, emulator):
    for _ in range(55):  # straight into the store: 55 calls would hit the rate limit
        emulator.notifications.add(NewNotification(
            portal="default", recipient_id=1, sender_id=2, notify_type=2, message="m",
            message_out="", notify_tag="", notify_sub_tag="", attach=None, created_at=T0,
            method="im.notify.personal.add", auth_type="apauth", credential="5"))
    assert len(rest.result("im.notify.get", {"LIMIT": 100})["notifications"]) == 50


@pytest.mark.parametrize("params, code", [
    ({"LAST_ID": 5}, "LAST_ID_AND_LAST_TYPE"),
    ({"LAST_TYPE": 3}, "LAST_ID_AND_LAST_TYPE"),
    ({"LAST_ID": "5a", "LAST_TYPE": 3}, "LAST_ID_STRING"),
    ({"LAST_ID": -1, "LAST_TYPE": 3}, "LAST_ID_STRING"),
    ({"LAST_ID": "٣", "LAST_TYPE": 3}, "LAST_ID_STRING"),
])
def test_get_errors(rest, params, code):
    texts = {"LAST_ID_AND_LAST_TYPE": "Parameters LAST_ID and LAST_TYPE should be used together.",
             "LAST_ID_STRING": "Last notification ID can't be string"}
    assert error_of(rest.webhook("im.notify.get", params)) == (400, code, texts[code])


def test_get_is_private(rest):
    listed = rest.result("methods", {"scope": "im"})
    assert "im.notify.get" not in listed and "im.notify.delete" in listed
    assert "im.notify.history.search" not in listed and "im.notify.schema.get" not in listed
    assert "im.counters.get" in listed


# --- im.notify.history.search ----------------------------------------------------------------


def test_history_search_by_text(rest):
    hit = send(rest, message="Deploy of 50% done_now")
    send(rest, message="unrelated")
    send(rest, recipient=2, message="Deploy for bob")
    result = rest.result("im.notify.history.search", {"SEARCH_TEXT": "deploy"})
    assert list(result) == ["chat_id", "total_results", "notifications", "users"]
    assert result["total_results"] == 1
    assert [item["id"] for item in result["notifications"]] == [hit]
    assert result["users"][0]["id"] == 1
    literal = rest.result("im.notify.history.search", {"SEARCH_TEXT": "50%"})
    assert [item["id"] for item in literal["notifications"]] == [hit]
    assert rest.result("im.notify.history.search",
                       {"SEARCH_TEXT": "e_n"})["notifications"][0]["id"] == hit
    assert rest.result("im.notify.history.search", {"SEARCH_TEXT": "%%%"})["total_results"] == 0


def test_history_search_paging_omits_total(rest):
    sent = [send(rest, message=f"match {n}") for n in range(3)]
    result = rest.result("im.notify.history.search",
                         {"SEARCH_TEXT": "match", "LAST_ID": sent[2], "LIMIT": 1})
    assert "total_results" not in result
    assert [item["id"] for item in result["notifications"]] == [sent[1]]


def test_history_search_by_type_date_and_author(rest, clock):
    mine = send(rest, message="a")
    clock.advance(86400)
    bobs = send_as_bob(rest, message="b")
    by_type = rest.result("im.notify.history.search", {"SEARCH_TYPE": "rest|rest_notify"})
    assert [item["id"] for item in by_type["notifications"]] == [bobs, mine]
    other_type = rest.result("im.notify.history.search", {"SEARCH_TYPE": "tasks|task_update"})
    assert other_type["notifications"] == []
    by_day = rest.result("im.notify.history.search", {"SEARCH_DATE": "2026-01-01T10:00:00+00:00"})
    assert [item["id"] for item in by_day["notifications"]] == [mine]
    by_author = rest.result("im.notify.history.search", {"SEARCH_AUTHORS": [2]})
    assert [item["id"] for item in by_author["notifications"]] == [bobs]


def test_history_search_group_tag_is_the_stored_tag(rest):
    tagged = send(rest, message="tagged one", TAG="TASK|42", CLIENT_ID="ci")
    send(rest, message="tagged two", TAG="TASK|43", CLIENT_ID="ci")
    stored = f"MP|{key('customci')}|TASK|42"
    result = rest.result("im.notify.history.search", {"SEARCH_TEXT": "tagged",
                                                      "GROUP_TAG": stored})
    assert [item["id"] for item in result["notifications"]] == [tagged]
    assert result["notifications"][0]["notify_tag"] == stored


@pytest.mark.parametrize("params, code", [
    ({}, "SEARCH_TEXT_ERROR"), ({"SEARCH_TEXT": "ab"}, "SEARCH_TEXT_ERROR"),
    ({"SEARCH_TEXT": "  ab \n"}, "SEARCH_TEXT_ERROR"),
    ({"SEARCH_TEXT": "abc", "LAST_ID": "x"}, "LAST_ID_STRING"),
])
def test_history_search_errors(rest, params, code):
    texts = {"SEARCH_TEXT_ERROR": "SEARCH_TEXT can't be less then 3 symbols",
             "LAST_ID_STRING": "Last notification ID can't be string"}
    assert error_of(rest.webhook("im.notify.history.search", params)) == (400, code, texts[code])


# --- im.notify.schema.get --------------------------------------------------------------------


def test_schema_get(rest):
    result = rest.result("im.notify.schema.get")
    assert list(result) == ["rest"]
    entry = result["rest"]
    assert entry["MODULE_ID"] == "rest" and entry["NAME"]
    assert [item["ID"] for item in entry["LIST"]] == ["rest|rest_notify"]


# --- batch and OAuth ---------------------------------------------------------------------------


def test_batch_add_read_counters_delete(client, emulator):
    # Keys in alphabetical order: the test client sends JSON with sorted keys.
    cmd = {
        "a": "im.notify.personal.add?USER_ID=1&MESSAGE=one",
        "b": "im.notify.personal.add?USER_ID=1&MESSAGE=two",
        "c_read": "im.notify.read.list?IDS[]=$result[a]",
        "d_count": "im.counters.get?ONLY_COUNTER=Y",
        "e_del": "im.notify.delete?ID=$result[b]",
    }
    response = client.post("/rest/1/devtoken/batch.json", json={"cmd": cmd, "halt": 1})
    result = response.get_json()["result"]
    assert result["result_error"] == []
    assert result["result"]["c_read"] is True
    assert result["result"]["d_count"]["TYPE"]["NOTIFY"] == 1
    assert result["result"]["e_del"] is True
    assert stored_ids(emulator) == [result["result"]["a"]]


def test_batch_reports_errors_per_command(client):
    cmd = {"bad": "im.notify.read.list", "ok": "im.notify.read.all"}
    result = client.post("/rest/1/devtoken/batch.json", json={"cmd": cmd}).get_json()["result"]
    assert result["result_error"]["bad"]["error"] == "PARAMS_ERROR"
    assert result["result"]["ok"] == {"result": True, "newCounter": 0}


def test_oauth_family(rest, emulator):
    a = rest.oauth("im.notify.personal.add", {"USER_ID": 1, "MESSAGE": "x"}).get_json()["result"]
    assert rest.oauth("im.notify.get").get_json()["result"]["notifications"][0]["id"] == a
    assert rest.oauth("im.notify.read.all").get_json()["result"]["newCounter"] == 0
    answer = rest.oauth("im.notify.answer", {"ID": a, "ANSWER_TEXT": "ok"}).get_json()
    assert answer["result"]["result_message"] == ["Your response has been successfully sent."]
    assert rest.oauth("im.notify.delete", {"ID": a}).get_json()["result"] is True
    assert stored_ids(emulator) == []


def test_scope_is_required(rest):
    response = rest.webhook("im.notify.read.all", user=2, code="noimtoken")
    assert response.status_code == 401 and response.get_json()["error"] == "insufficient_scope"


# --- robustness ------------------------------------------------------------------------------

MANAGE_METHODS = ["im.notify.delete", "im.notify.read", "im.notify.read.list",
                  "im.notify.read.all", "im.notify.answer", "im.notify.confirm", "im.notify.get",
                  "im.notify.history.search", "im.notify.schema.get", "im.counters.get"]
PARAM_NAMES = ["ID", "IDS", "TAG", "SUB_TAG", "CLIENT_ID", "ACTION", "ONLY_CURRENT", "NOTIFY_ID",
               "ANSWER_TEXT", "NOTIFY_VALUE", "LAST_ID", "LAST_TYPE", "LIMIT", "CONVERT_TEXT",
               "SEARCH_TEXT", "SEARCH_TYPE", "SEARCH_DATE", "SEARCH_TYPES", "SEARCH_AUTHORS",
               "SEARCH_DATE_FROM", "SEARCH_DATE_TO", "ONLY_COUNTER", "JSON"]
ODD_VALUES = [None, True, -1, 2**70, 1e308, "9" * 40, "", "abc", [], {}, ["x", {"y": 1}],
              {"0": "1", "a": [2]}, "2026-13-45T99:99:99", "'; DROP TABLE notifications; --"]


@pytest.mark.parametrize("method_name", MANAGE_METHODS)
def test_odd_values_never_give_a_server_error(rest, emulator, method_name):
    kept = send(rest, recipient=2)
    for value in ODD_VALUES:
        params = {name: value for name in PARAM_NAMES}
        response = rest.webhook(method_name, params)
        assert response.status_code < 500, (value, response.get_data(as_text=True))
    assert kept in stored_ids(emulator)


# --- the official Python SDK, unmodified, against the real server ------------------------------


@pytest.fixture(scope="module")
def sdk(tmp_path_factory):
    from b24pysdk import BitrixWebhook, Client

    from tests.test_server import Server

    tmp = tmp_path_factory.mktemp("manage-sdk")
    running = Server(tmp / "db.sqlite3", "fixtures/default.json", tls_dir=tmp / "tls")
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("REQUESTS_CA_BUNDLE", str(tmp / "tls" / "ca.pem"))
        try:
            yield Client(BitrixWebhook(domain=f"127.0.0.1:{running.port}",
                                       webhook_token="1/devtoken"))
        finally:
            running.stop()


def test_sdk_typed_calls_match_its_own_integration_expectations(sdk):
    """What b24pysdk's tests/integration/scopes/im/test_im_notify.py checks on a portal."""
    notify = sdk.im.notify
    first = notify.personal.add(user_id=1, message="b24emu sdk one").result
    second = notify.personal.add(user_id=1, message="b24emu sdk two").result
    got = notify.get(limit=20).result
    assert {"total_count", "total_unread_count", "chat_id", "notifications", "users"} <= set(got)
    assert [item["id"] for item in got["notifications"]] == [second, first]
    found = notify.history.search(search_text="b24emu sdk", limit=20).result
    assert [item["id"] for item in found["notifications"]] == [second, first]
    assert len(notify.schema.get().result) > 0
    answer = notify.answer(notify_id=first, answer_text="OK").result
    assert answer == {"result_message": ["Your response has been successfully sent."]}
    assert notify.confirm(notify_id=first, notify_value=True).result == {"result_message": False}
    assert notify.read.list(ids=[first], action=True).result is True
    assert sdk.im.counters.get().result["TYPE"]["NOTIFY"] == 1
    assert notify.read.all().result == {"result": True, "newCounter": 0}
    assert sdk.im.counters.get().result["TYPE"]["ALL"] == 0
