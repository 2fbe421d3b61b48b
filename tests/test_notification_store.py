"""NotificationStore filters, read marks and deletes: every field, literal matching, no SQL."""

from __future__ import annotations

import pytest
from b24emu.store.notifications import (
    NOTIFY_FROM,
    NOTIFY_SYSTEM,
    NewNotification,
    NotificationFilter,
)

HOSTILE = "'; DROP TABLE notifications; --"


@pytest.fixture
def store(emulator):
    return emulator.notifications


def add(store, *, portal="default", recipient=2, sender=1, message="hello", tag="", sub_tag="",
        notify_type=NOTIFY_FROM, at=1000.0) -> int:
    return store.add(NewNotification(
        portal=portal, recipient_id=recipient, sender_id=sender, notify_type=notify_type,
        message=message, message_out="", notify_tag=tag, notify_sub_tag=sub_tag, attach=None,
        created_at=at, method="im.notify.personal.add", auth_type="apauth", credential="1"))


def ids(rows) -> list[int]:
    return [row["id"] for row in rows]


def test_query_is_newest_first_with_limit_and_offset(store):
    first, second, third = (add(store, message=str(n)) for n in range(3))
    assert ids(store.query("default")) == [third, second, first]
    assert ids(store.query("default", limit=1, offset=1)) == [second]
    assert store.count_matching("default") == 3


def test_recipient_sender_and_type_filters(store):
    to_bob = add(store, recipient=2, sender=1)
    to_anna = add(store, recipient=1, sender=2)
    system = add(store, recipient=2, sender=0, notify_type=NOTIFY_SYSTEM)
    assert ids(store.query("default", NotificationFilter(recipient_id=2))) == [system, to_bob]
    assert ids(store.query("default", NotificationFilter(sender_id=2))) == [to_anna]
    assert ids(store.query("default", NotificationFilter(notify_type=NOTIFY_SYSTEM))) == [system]
    assert ids(store.query("default", NotificationFilter(sender_ids=(0, 2)))) == [system, to_anna]
    assert store.query("default", NotificationFilter(sender_ids=())) == []


def test_exact_and_plain_tag_filters(store):
    mine = add(store, tag="MP|a1b2c|build", sub_tag="MP|a1b2c|ci")
    other_app = add(store, tag="MP|ffff0|build", sub_tag="MP|ffff0|ci")
    plain = add(store, tag="build", sub_tag="ci")  # not an app-prefixed tag
    assert ids(store.query("default", NotificationFilter(notify_tag="MP|a1b2c|build"))) == [mine]
    assert ids(store.query("default", NotificationFilter(tag="build"))) == [other_app, mine]
    assert ids(store.query("default", NotificationFilter(notify_sub_tag="MP|ffff0|ci"))) == [
        other_app]
    assert ids(store.query("default", NotificationFilter(sub_tag="ci"))) == [other_app, mine]
    assert plain not in ids(store.query("default", NotificationFilter(tag="build")))
    assert store.query("default", NotificationFilter(tag="buil")) == []


@pytest.mark.parametrize("hostile", [HOSTILE, "%", "_", "MP|%|%", "' OR '1'='1"])
def test_hostile_strings_match_literally(store, hostile):
    literal = add(store, tag=f"MP|a1b2c|{hostile}", sub_tag=f"MP|a1b2c|{hostile}",
                  message=f"before {hostile} after")
    add(store, tag="MP|a1b2c|plain", sub_tag="MP|a1b2c|plain", message="plain words")
    for flt in (NotificationFilter(tag=hostile), NotificationFilter(sub_tag=hostile),
                NotificationFilter(notify_tag=f"MP|a1b2c|{hostile}"),
                NotificationFilter(notify_sub_tag=f"MP|a1b2c|{hostile}"),
                NotificationFilter(text=hostile)):
        assert ids(store.query("default", flt)) == [literal], flt
    assert store.delete_matching("default", NotificationFilter(text=hostile)) == [literal]
    assert store.count_matching("default") == 1  # the table is still there, one row left


def test_text_is_case_insensitive_substring(store):
    found = add(store, message="Build FAILED on main")
    add(store, message="all good")
    assert ids(store.query("default", NotificationFilter(text="failed"))) == [found]
    assert ids(store.query("default", NotificationFilter(text="BUILD f"))) == [found]


def test_id_filters(store):
    a, b, c = (add(store) for _ in range(3))
    assert ids(store.query("default", NotificationFilter(ids=(a, c)))) == [c, a]
    assert store.query("default", NotificationFilter(ids=())) == []
    assert ids(store.query("default", NotificationFilter(min_id=b))) == [c, b]
    assert ids(store.query("default", NotificationFilter(below_id=b))) == [a]


def test_time_filters(store):
    old = add(store, at=100.0)
    new = add(store, at=200.0)
    assert ids(store.query("default", NotificationFilter(since=200.0))) == [new]
    assert ids(store.query("default", NotificationFilter(until=200.0))) == [old]


def test_mark_read_sets_and_clears_read_at(store):
    a, b = add(store), add(store)
    assert store.unread_count("default", 2) == 2
    assert store.mark_read("default", NotificationFilter(ids=(a,)), read=True, now=500.0) == 1
    assert store.mark_read("default", NotificationFilter(ids=(a,)), read=True, now=600.0) == 0
    row = store.get("default", a)
    assert row["is_read"] is True and row["read_at"] == 500.0
    assert ids(store.query("default", NotificationFilter(is_read=True))) == [a]
    assert ids(store.query("default", NotificationFilter(is_read=False))) == [b]
    assert store.unread_count("default", 2) == 1
    assert store.mark_read("default", NotificationFilter(), read=False, now=700.0) == 1
    row = store.get("default", a)
    assert row["is_read"] is False and row["read_at"] is None


def test_delete_matching_returns_ids_and_spares_others(store):
    a = add(store, recipient=2, tag="MP|a1b2c|x")
    b = add(store, recipient=1, tag="MP|a1b2c|x")
    keep = add(store, recipient=2, tag="MP|a1b2c|y")
    assert store.delete_matching("default", NotificationFilter(notify_tag="MP|a1b2c|x")) == [a, b]
    assert ids(store.query("default")) == [keep]
    assert store.delete_matching("default", NotificationFilter(notify_tag="none")) == []


def test_portals_are_separate(store):
    add(store, portal="other")
    mine = add(store)
    assert ids(store.query("default")) == [mine]
    assert store.delete_all("default") == 1
    assert store.count("other") == 1
    assert store.unread_count("other", 2) == 1


@pytest.mark.parametrize("flt", [
    NotificationFilter(notify_tag="MP|abcde|build"), NotificationFilter(tag="build"),
    NotificationFilter(notify_sub_tag="MP|abcde|step"), NotificationFilter(sub_tag="step"),
    NotificationFilter(recipient_id=2, notify_tag="MP|abcde|build")])
def test_tag_queries_find_their_rows_through_a_tag_index(store, flt):
    """With a million notifications stored, a TAG replacement or a tag filter that scanned a
    portal's rows would take seconds: each finds its rows through the plain-tag index."""
    from b24emu.store.notifications import _where

    where, params = _where("default", flt)
    conn = store.database.db.conn
    for sql in (f"SELECT * FROM notifications WHERE {where} ORDER BY id DESC LIMIT 50",
                f"DELETE FROM notifications WHERE {where}"):
        plan = " ".join(row[3] for row in conn.execute("EXPLAIN QUERY PLAN " + sql, params))
        column = "sub_tag" if flt.notify_sub_tag or flt.sub_tag else "tag"
        assert f"USING INDEX idx_notifications_plain_{column} (portal=? AND <expr>=?" in plan


def test_a_stored_tag_matches_exactly_whatever_its_prefix(store):
    same = add(store, tag="MP|abcde|build")
    add(store, tag="MP|fffff|build")  # same plain tag, other app
    add(store, tag="build")           # too short for a prefix
    add(store, tag="XX|abcde|build")
    assert ids(store.query("default", NotificationFilter(notify_tag="MP|abcde|build"))) == [same]
    short = store.query("default", NotificationFilter(notify_tag="build"))
    assert [row["notify_tag"] for row in short] == ["build"]
    untagged = add(store)  # no tag: not in the tag index, still found by the empty stored tag
    assert ids(store.query("default", NotificationFilter(notify_tag=""))) == [untagged]


def test_the_tag_replacement_of_an_add_finds_the_old_row_through_the_tag_index(store):
    """The DELETE an add with a TAG runs (not only a statement of its shape) uses the index."""
    from b24emu.store.notifications import _REPLACE_TAG

    plan = " ".join(row[3] for row in store.database.db.conn.execute(
        "EXPLAIN QUERY PLAN " + _REPLACE_TAG, ["default", 2, "MP|abcde|x", "MP|abcde|x"]))
    assert "USING INDEX idx_notifications_plain_tag (portal=? AND <expr>=? AND recipient_id=?)" \
        in plan
