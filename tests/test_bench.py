"""The benchmark's growth preparation builds a file the emulator opens as its own."""

from __future__ import annotations

from b24emu.context import Emulator
from b24emu.settings import Settings
from b24emu.store.notifications import NotificationFilter

from bench import growth, load


def test_prepared_file_opens_in_the_emulator_with_every_row(tmp_path):
    workdir = tmp_path / "work"
    workdir.mkdir()
    path, _seconds, from_cache = growth.prepare(600, workdir, str(tmp_path / "cache"))
    assert not from_cache
    emulator = Emulator.open(Settings(db=str(path), fixtures="fixtures/default.json"))
    try:
        store = emulator.notifications
        assert store.count("default") == 600
        # Spread over every active user of the portal (an inactive one never receives any),
        # with plain tags the control API filters.
        recipients = {row["recipient_id"] for row in emulator.database.query(
            "SELECT DISTINCT recipient_id FROM notifications")}
        active = {user["id"] for user in emulator.database.query(
            "SELECT id FROM users WHERE portal = 'default' AND active = 1")}
        assert recipients == active and 2 in active
        tagged = store.query("default", NotificationFilter(recipient_id=2, tag="t-5"))
        assert tagged and all(row["notify_tag"].endswith("|t-5") for row in tagged)
        assert store.count_matching("default", NotificationFilter(sub_tag="s-1")) > 0
        # Rows decode like the ones the emulator stores itself.
        newest = store.query("default", limit=5)
        assert all(isinstance(row["is_read"], bool) for row in newest)
        assert any(row["attach"] for row in store.query("default", limit=20))
    finally:
        emulator.database.close()

    again, _seconds, from_cache = growth.prepare(600, workdir, str(tmp_path / "cache"))
    assert from_cache and growth.count(again) == 600


def test_each_tag_is_stored_once_per_recipient_and_app(tmp_path):
    # add keeps one row per (recipient, stored tag), so prepared data must too.
    path, _seconds, _hit = growth.prepare(2400, tmp_path, str(tmp_path / "cache"))
    emulator = Emulator.open(Settings(db=str(path), fixtures=""))
    try:
        duplicates = emulator.database.query(
            "SELECT recipient_id, notify_tag, count(*) AS n FROM notifications"
            " WHERE notify_tag != '' GROUP BY recipient_id, notify_tag HAVING n > 1")
    finally:
        emulator.database.close()
    assert duplicates == []


def test_request_bytes_are_valid_http():
    raw = load.encode("POST", "127.0.0.1:80", "/rest/x", {"A": 1})
    head, _, body = raw.partition(b"\r\n\r\n")
    assert head.startswith(b"POST /rest/x HTTP/1.1\r\nHost: 127.0.0.1:80")
    assert b"Content-Length: 8" in head and body == b'{"A": 1}'
