"""im.notify.personal.add as a client sees it: results, errors in order, what is stored."""

from __future__ import annotations

import hashlib

import pytest
from b24emu import create_app

from tests.conftest import T0

EXPECTED_TIME = {
    "start": T0,
    "finish": T0,
    "duration": 0.0,
    "processing": 0.0,
    "date_start": "2026-01-01T00:00:00+00:00",
    "date_finish": "2026-01-01T00:00:00+00:00",
    "operating_reset_at": int(T0) + 600,
    "operating": 0,
}


def stored(emulator, recipient: int = 2) -> list[dict]:
    """What the portal holds for a recipient, newest first."""
    return emulator.notifications.for_recipient("default", recipient)


def test_success_returns_integer_id_and_full_time_object(rest):
    response = rest.webhook("im.notify.personal.add", {"USER_ID": 2, "MESSAGE": "hi"})
    assert response.status_code == 200
    assert response.headers["Content-Type"] == "application/json; charset=utf-8"
    body = response.get_json()
    assert isinstance(body["result"], int) and not isinstance(body["result"], bool)
    assert body["time"] == EXPECTED_TIME
    assert list(body) == ["result", "time"]


def test_time_object_follows_the_clock(rest, clock):
    clock.advance(3661.25)
    response = rest.webhook("im.notify.personal.add", {"USER_ID": 2, "MESSAGE": "hi"})
    time = response.get_json()["time"]
    assert time["start"] == T0 + 3661.25
    assert time["date_start"] == "2026-01-01T01:01:01+00:00"
    assert time["operating_reset_at"] == int(T0 + 3661.25) + 600


def test_time_zone_setting_sets_date_offset(settings, clock):
    app = create_app(settings.with_overrides(timezone="Europe/Berlin"), clock=clock)
    body = app.test_client().post("/rest/1/devtoken/im.notify.personal.add",
                                  json={"USER_ID": 2, "MESSAGE": "x"}).get_json()
    assert body["time"]["date_start"] == "2026-01-01T01:00:00+01:00"


def test_ids_increase_and_are_unique(rest):
    ids = [rest.result("im.notify.personal.add", {"USER_ID": 2, "MESSAGE": f"m{i}"})
           for i in range(5)]
    assert ids == sorted(ids) and len(set(ids)) == 5


def test_stored_fields(rest, emulator):
    notification_id = rest.result("im.notify.personal.add", {
        "USER_ID": 2, "MESSAGE": "  Deploy [B]done[/B]#BR#next[BR]line  ",
        "MESSAGE_OUT": "  by mail  ", "TAG": "T1", "SUB_TAG": "S1",
    })
    [row] = stored(emulator)
    assert row["id"] == notification_id
    assert row["recipient_id"] == 2 and row["sender_id"] == 1
    assert row["notify_type"] == 2 and row["module"] == "rest" and row["event"] == "rest_notify"
    assert row["message"] == "Deploy [B]done[/B]\nnext\nline"
    assert row["message_out"] == "by mail"
    key = hashlib.md5(b"").hexdigest()[:5]
    assert (row["notify_tag"], row["notify_sub_tag"]) == (f"MP|{key}|T1", f"MP|{key}|S1")
    assert row["attach"] is None and row["is_read"] is False and row["created_at"] == T0


@pytest.mark.parametrize("params, code, description", [
    ({"MESSAGE": "hi"}, "USER_ID_EMPTY", "User ID can't be empty"),
    ({"USER_ID": 0, "MESSAGE": "hi"}, "USER_ID_EMPTY", "User ID can't be empty"),
    ({"USER_ID": -2, "MESSAGE": "hi"}, "USER_ID_EMPTY", "User ID can't be empty"),
    ({"USER_ID": "abc", "MESSAGE": "hi"}, "USER_ID_EMPTY", "User ID can't be empty"),
    ({"USER_ID": "", "MESSAGE": "hi"}, "USER_ID_EMPTY", "User ID can't be empty"),
    ({"USER_ID": None, "MESSAGE": "hi"}, "USER_ID_EMPTY", "User ID can't be empty"),
    ({"USER_ID": [], "MESSAGE": "hi"}, "USER_ID_EMPTY", "User ID can't be empty"),
    ({"TO": 0, "USER_ID": 2, "MESSAGE": "hi"}, "USER_ID_EMPTY", "User ID can't be empty"),
    ({"USER_ID": 2}, "MESSAGE_EMPTY", "Message can't be empty"),
    ({"USER_ID": 2, "MESSAGE": ""}, "MESSAGE_EMPTY", "Message can't be empty"),
    ({"USER_ID": 2, "MESSAGE": " \t\n\r\x0b\x00 "}, "MESSAGE_EMPTY", "Message can't be empty"),
    ({"USER_ID": 2, "MESSAGE": {"a": 1}}, "MESSAGE_EMPTY", "Message can't be empty"),
    ({"USER_ID": 2, "MESSAGE": "hi", "ATTACH": "abc"}, "ATTACH_ERROR", "Incorrect attach params"),
    ({"USER_ID": 2, "MESSAGE": "hi", "ATTACH": [{"FOO": 1}]}, "ATTACH_ERROR",
     "Incorrect attach params"),
    ({"USER_ID": 2, "MESSAGE": "hi", "ATTACH": True}, "ATTACH_ERROR", "Incorrect attach params"),
    # Order: USER_ID before MESSAGE before ATTACH (Part A 4).
    ({"USER_ID": 0, "MESSAGE": "", "ATTACH": "abc"}, "USER_ID_EMPTY", "User ID can't be empty"),
    ({"USER_ID": 2, "MESSAGE": "", "ATTACH": "abc"}, "MESSAGE_EMPTY", "Message can't be empty"),
    ({"USER_ID": 999, "MESSAGE": "hi", "ATTACH": "abc"}, "ATTACH_ERROR",
     "Incorrect attach params"),
])
def test_validation_errors(rest, emulator, params, code, description):
    response = rest.webhook("im.notify.personal.add", params)
    assert response.status_code == 400
    assert response.get_json() == {"error": code, "error_description": description}
    assert emulator.notifications.count("default") == 0


def test_error_json_is_written_the_php_way(rest):
    raw = rest.webhook("im.notify.personal.add", {"MESSAGE": "hi"}).get_data()
    assert raw == b'{"error":"USER_ID_EMPTY","error_description":"User ID can\\u0027t be empty"}'


@pytest.mark.parametrize("user_id", [999, 3, "999"])
def test_unknown_or_inactive_recipient_is_false(rest, emulator, user_id):
    body = rest.webhook("im.notify.personal.add", {"USER_ID": user_id, "MESSAGE": "hi"}).get_json()
    assert body["result"] is False and "time" in body
    assert emulator.notifications.count("default") == 0


@pytest.mark.parametrize("user_id, recipient", [("2abc", 2), (" 2", 2), ("2.9", 2), (2.7, 2),
                                                 ("+2", 2), (True, 1)])
def test_user_id_is_read_with_php_intval(rest, emulator, user_id, recipient):
    rest.result("im.notify.personal.add", {"USER_ID": user_id, "MESSAGE": "hi"})
    assert len(stored(emulator, recipient)) == 1


def test_to_is_an_alias_that_wins(rest, emulator):
    rest.result("im.notify.personal.add", {"TO": 2, "USER_ID": 1, "MESSAGE": "hi"})
    assert len(stored(emulator, 2)) == 1 and stored(emulator, 1) == []


def test_lower_case_names_work_and_later_spelling_wins(client, emulator):
    response = client.get("/rest/1/devtoken/im.notify.personal.add"
                          "?user_id=1&MESSAGE=first&message=second&USER_ID=2")
    assert isinstance(response.get_json()["result"], int)
    assert stored(emulator, 2)[0]["message"] == "second"


def test_message_only_markers_gives_false(rest, emulator):
    body = rest.webhook("im.notify.personal.add", {"USER_ID": 2, "MESSAGE": "#BR#[BR]"}).get_json()
    assert body["result"] is False
    assert emulator.notifications.count("default") == 0


@pytest.mark.parametrize("length, expected_length", [(20000, 20000), (20006, 20006),
                                                     (20007, 20006), (50000, 20006)])
def test_message_is_cut_past_the_limit(rest, emulator, length, expected_length):
    rest.result("im.notify.personal.add", {"USER_ID": 2, "MESSAGE": "x" * length})
    message = stored(emulator)[0]["message"]
    assert len(message) == expected_length
    if length > 20006:
        assert message.endswith("x (...)")


class TestTagReplacement:
    """TAG replaces the same recipient's earlier notification with the same stored tag."""

    def add(self, rest, user_id, tag, **kwargs):
        params = {"USER_ID": user_id, "MESSAGE": f"to {user_id}", "TAG": tag}
        return rest.result("im.notify.personal.add", {**params, **kwargs.pop("extra", {})},
                           **kwargs)

    def test_same_recipient_is_replaced(self, rest, emulator):
        first = self.add(rest, 2, "deploy")
        second = self.add(rest, 2, "deploy")
        assert second > first
        assert [row["id"] for row in stored(emulator)] == [second]

    def test_other_recipient_is_untouched(self, rest, emulator):
        to_one = self.add(rest, 1, "deploy")
        self.add(rest, 2, "deploy")
        assert [row["id"] for row in stored(emulator, 1)] == [to_one]

    def test_other_tag_and_no_tag_are_untouched(self, rest, emulator):
        self.add(rest, 2, "a")
        rest.result("im.notify.personal.add", {"USER_ID": 2, "MESSAGE": "untagged"})
        self.add(rest, 2, "b")
        assert len(stored(emulator)) == 3

    def test_other_app_key_is_untouched(self, rest, client, emulator):
        webhook_id = self.add(rest, 2, "deploy")
        with_client_id = self.add(rest, 2, "deploy", extra={"CLIENT_ID": "crm"})
        oauth = client.post("/rest/im.notify.personal.add.json", json={
            "USER_ID": 2, "MESSAGE": "o", "TAG": "deploy", "auth": "devaccesstoken"}).get_json()
        other = client.post("/rest/im.notify.personal.add.json", json={
            "USER_ID": 2, "MESSAGE": "o", "TAG": "deploy", "auth": "otheraccesstoken"}).get_json()
        ids = {row["id"] for row in stored(emulator)}
        assert ids == {webhook_id, with_client_id, oauth["result"], other["result"]}
        tags = {row["notify_tag"] for row in stored(emulator)}
        assert tags == {
            "MP|" + hashlib.md5(b"").hexdigest()[:5] + "|deploy",
            "MP|" + hashlib.md5(b"customcrm").hexdigest()[:5] + "|deploy",
            "MP|" + hashlib.md5(b"local.emulator.app").hexdigest()[:5] + "|deploy",
            "MP|" + hashlib.md5(b"other.app").hexdigest()[:5] + "|deploy",
        }

    def test_a_huge_client_id_keys_its_tag_and_is_not_kept(self, rest, emulator):
        """A long CLIENT_ID still names its own app key (the tag replaces only its own), and the
        key cache keeps no such string: 256 of them would hold gigabytes in a worker."""
        from b24emu.methods.im_notify import _md5_prefix

        client_id = "c" * 100_000
        _md5_prefix.cache_clear()
        first = self.add(rest, 2, "deploy", extra={"CLIENT_ID": client_id})
        second = self.add(rest, 2, "deploy", extra={"CLIENT_ID": client_id})
        [row] = stored(emulator)
        key = hashlib.md5(b"custom" + client_id.encode()).hexdigest()[:5]
        assert (row["id"], row["notify_tag"]) == (second, f"MP|{key}|deploy") and first < second
        assert _md5_prefix.cache_info().currsize == 0  # computed each time, never kept

    def test_same_app_from_another_user_replaces(self, rest, emulator):
        self.add(rest, 2, "deploy")
        latest = self.add(rest, 2, "deploy", code="bobimtoken", user=2)
        [row] = stored(emulator)
        assert (row["id"], row["sender_id"]) == (latest, 2)

    @pytest.mark.parametrize("tag", ["", "0", None])
    def test_empty_tag_stores_no_tag_and_replaces_nothing(self, rest, emulator, tag):
        self.add(rest, 2, tag)
        self.add(rest, 2, tag)
        rows = stored(emulator)
        assert len(rows) == 2 and {row["notify_tag"] for row in rows} == {""}

    def test_failed_add_does_not_delete_the_earlier_one(self, rest, emulator):
        first = self.add(rest, 2, "deploy")
        response = rest.webhook("im.notify.personal.add",
                                {"USER_ID": 2, "MESSAGE": "x", "TAG": "deploy", "ATTACH": "junk"})
        assert response.status_code == 400
        assert [row["id"] for row in stored(emulator)] == [first]


class TestAttach:
    """ATTACH through the method: stored normalized, errors with their codes."""

    BLOCKS = [{"MESSAGE": "hi"}, {"LINK": {"NAME": "x", "LINK": "https://example.com"}},
              {"DELIMITER": {"SIZE": 200, "COLOR": "#c8c8c8"}}]

    @pytest.mark.parametrize("attach", [BLOCKS, {"BLOCKS": BLOCKS},
                                        '[{"MESSAGE":"hi"},{"LINK":{"NAME":"x","LINK":'
                                        '"https://example.com"}},{"DELIMITER":{"SIZE":200,'
                                        '"COLOR":"#c8c8c8"}}]'])
    def test_forms_store_the_same_blocks(self, rest, emulator, attach):
        rest.result("im.notify.personal.add", {"USER_ID": 2, "MESSAGE": "m", "ATTACH": attach})
        saved = stored(emulator)[0]["attach"]
        assert saved["ID"] == int(T0)
        assert [next(iter(block)) for block in saved["BLOCKS"]] == ["MESSAGE", "LINK", "DELIMITER"]

    @pytest.mark.parametrize("falsy", ["", "0", [], {}, None, 0, False])
    def test_falsy_attach_means_none(self, rest, emulator, falsy):
        rest.result("im.notify.personal.add", {"USER_ID": 2, "MESSAGE": "m", "ATTACH": falsy})
        assert stored(emulator)[0]["attach"] is None

    def test_size_limit_boundary(self, rest, emulator):
        from b24emu.methods.attach import attach_json_length, normalize_attach

        def attach_of(text_length):
            return [{"MESSAGE": "a" * text_length}]

        overhead = attach_json_length(normalize_attach(attach_of(0) + [{"MESSAGE": "a"}],
                                                       attach_id=int(T0))) - 1
        exact = None
        for length in range(30720 - overhead - 50, 30720):
            if attach_json_length(normalize_attach(attach_of(length), attach_id=int(T0))) == 30720:
                exact = length
                break
        assert exact is not None
        ok = rest.webhook("im.notify.personal.add",
                          {"USER_ID": 2, "MESSAGE": "m", "ATTACH": attach_of(exact)})
        assert isinstance(ok.get_json()["result"], int)
        over = rest.webhook("im.notify.personal.add",
                            {"USER_ID": 2, "MESSAGE": "m", "ATTACH": attach_of(exact + 1)})
        assert over.status_code == 400
        assert over.get_json() == {
            "error": "ATTACH_OVERSIZE",
            "error_description": "You have exceeded the maximum allowable size of attach",
        }
        assert emulator.notifications.count("default") == 1

    def test_limit_is_a_setting(self, settings, clock):
        app = create_app(settings.with_overrides(attach_max_bytes=100), clock=clock)
        response = app.test_client().post("/rest/1/devtoken/im.notify.personal.add", json={
            "USER_ID": 2, "MESSAGE": "m", "ATTACH": [{"MESSAGE": "x" * 100}]})
        assert response.get_json()["error"] == "ATTACH_OVERSIZE"

    def test_oversize_is_checked_before_recipient(self, rest):
        response = rest.webhook("im.notify.personal.add", {
            "USER_ID": 999, "MESSAGE": "m", "ATTACH": [{"MESSAGE": "x" * 40000}]})
        assert response.get_json()["error"] == "ATTACH_OVERSIZE"

    def test_form_encoded_attach(self, client, emulator):
        response = client.post("/rest/1/devtoken/im.notify.personal.add", data={
            "USER_ID": "2", "MESSAGE": "m", "ATTACH[BLOCKS][0][MESSAGE]": "hi",
            "ATTACH[BLOCKS][1][DELIMITER][SIZE]": "300"})
        assert isinstance(response.get_json()["result"], int)
        blocks = stored(emulator)[0]["attach"]["BLOCKS"]
        assert blocks[0] == {"MESSAGE": "hi"} and blocks[1]["DELIMITER"]["SIZE"] == 300


def test_oauth_sender_and_tag(client, emulator):
    response = client.post("/rest/im.notify.personal.add", json={
        "USER_ID": 2, "MESSAGE": "from app", "TAG": "t", "auth": "devaccesstoken"})
    assert isinstance(response.get_json()["result"], int)
    row = stored(emulator)[0]
    assert row["sender_id"] == 1 and row["auth_type"] == "oauth"
    assert row["notify_tag"] == "MP|" + hashlib.md5(b"local.emulator.app").hexdigest()[:5] + "|t"


def test_everything_survives_a_restart(settings, clock):
    first = create_app(settings, clock=clock)
    notification_id = first.test_client().post("/rest/1/devtoken/im.notify.personal.add", json={
        "USER_ID": 2, "MESSAGE": "persist", "MESSAGE_OUT": "mail", "TAG": "t", "SUB_TAG": "s",
        "ATTACH": [{"MESSAGE": "block"}]}).get_json()["result"]
    before = first.extensions["b24emu"].notifications.get("default", notification_id)
    first.extensions["b24emu"].database.close()
    second = create_app(settings, clock=clock)
    after = second.extensions["b24emu"].notifications.get("default", notification_id)
    assert after == before and after["message"] == "persist"
    assert after["attach"]["BLOCKS"] == [{"MESSAGE": "block"}]
    next_id = second.test_client().post("/rest/1/devtoken/im.notify.personal.add", json={
        "USER_ID": 2, "MESSAGE": "again"}).get_json()["result"]
    assert next_id > notification_id
