"""Every portal's delivery history is trimmed, however the delivery ids are shared out."""

from __future__ import annotations

from b24emu.events.store import DELIVERED, TRIM_EVERY, Handler
from b24emu.store.portals import token_hash

from tests.conftest import T0


def test_two_portals_taking_turns_both_keep_a_bounded_history_and_lose_old_tokens(
        emulator, monkeypatch):
    """Delivery ids are global: two portals taking turns get the even and the odd ones."""
    monkeypatch.setattr("b24emu.events.store.HISTORY_KEPT", 5)
    events = emulator.events
    handlers = {portal: Handler(number, portal, "app", "ONCRMDEALADD", "http://127.0.0.1:9/",
                                1, "", {}, None)
                for number, portal in enumerate(("default", "acme"), 1)}
    tokens: dict[str, dict[int, str]] = {"default": {}, "acme": {}}
    for n in range(400):
        portal = ("default", "acme")[n % 2]
        delivery_id, status = events.enqueue(handlers[portal], {"n": n}, 1, T0,
                                             refresh_token=False, base_url="")
        assert status == "queued" and events.claim("test-worker", T0)["id"] == delivery_id
        access = emulator.portals.issue_tokens(portal, "app", 1, T0,
                                               refresh=False)["access_token"]
        tokens[portal][delivery_id] = access
        events.finish(delivery_id, status=DELIVERED, sent_at=T0, duration=0.0,
                      http_status=200, response="ok", error=None,
                      token_hash=token_hash(access))
    for portal, issued in tokens.items():
        rows, total = events.deliveries(portal, limit=1000)
        assert 5 <= total < 5 + TRIM_EVERY, (portal, total)
        kept = {row["id"] for row in rows}
        assert kept == set(sorted(issued)[-total:])  # the newest ones
        live = {delivery_id for delivery_id, access in issued.items()
                if emulator.portals.token(portal, access) is not None}
        assert live == kept, portal  # the trimmed deliveries' tokens went with them
