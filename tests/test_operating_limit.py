"""The per-method operating budget: 429 OPERATION_TIME_LIMIT and a truthful time.operating."""

from __future__ import annotations

import pytest
from b24emu import create_app
from b24emu.settings import ConfigError

from tests.conftest import T0

BLOCKED = {"error": "OPERATION_TIME_LIMIT",
           "error_description": "Method is blocked due to operation time limit."}
ADD = "im.notify.personal.add"


@pytest.fixture
def costly(settings, clock):
    """personal.add costs 60 simulated seconds a call; the rate limit is off."""
    app = create_app(settings.with_overrides(operating_costs=f"{ADD}=60", rate_limit="off"),
                     clock=clock)
    return app.test_client()


def add(client, code="devtoken", user=1, method=ADD):
    return client.post(f"/rest/{user}/{code}/{method}", json={"USER_ID": 2, "MESSAGE": "x"})


def test_budget_is_reported_and_blocks_past_480_seconds(costly):
    operating = []
    for _ in range(9):  # 8 x 60 = 480 is not over the limit, so a 9th call still runs
        body = add(costly).get_json()
        operating.append(body["time"]["operating"])
        assert body["time"]["operating_reset_at"] == int(T0) + 600
    assert operating == [60.0 * n for n in range(1, 10)]
    refused = add(costly)
    assert (refused.status_code, refused.get_json()) == (429, BLOCKED)


def test_two_workers_share_one_budget(settings, clock):
    """Each worker keeps the buckets it read until some process charges a run: the budget a
    call reports and the refusal past the limit count the runs of every worker."""
    tuned = settings.with_overrides(operating_costs=f"{ADD}=60", rate_limit="off")
    first, second = (create_app(tuned, clock=clock).test_client() for _ in range(2))
    seen = [add(worker).get_json()["time"]["operating"]
            for worker in [first, second] * 4 + [first]]
    assert seen == [60.0 * n for n in range(1, 10)]
    assert add(second).status_code == 429  # 540 s counted, most of it by the other worker
    clock.advance(600)  # every bucket expired: both run again, from nothing
    assert add(second).get_json()["time"]["operating"] == 60.0
    assert add(first).get_json()["time"]["operating"] == 120.0


def test_a_worker_that_read_the_budget_sees_another_workers_charges(settings, clock):
    """A call under 0.1 s charges nothing, so the worker keeps the buckets it read; runs
    charged by another worker (here one whose settings cost 60 s a call) are seen at once."""
    cheap = create_app(settings.with_overrides(rate_limit="off"), clock=clock).test_client()
    costly = create_app(settings.with_overrides(operating_costs=f"{ADD}=60", rate_limit="off"),
                        clock=clock).test_client()
    assert add(cheap).get_json()["time"]["operating"] == 0
    for _ in range(9):
        add(costly)
    refused = add(cheap)
    assert (refused.status_code, refused.get_json()) == (429, BLOCKED)


def test_other_methods_and_callers_keep_working(costly):
    for _ in range(9):
        add(costly)
    assert add(costly).status_code == 429
    assert add(costly, method="im.notify.system.add").status_code == 200
    assert add(costly, code="abc123token").status_code == 200  # another webhook
    oauth = costly.post(f"/rest/{ADD}", json={"USER_ID": 2, "MESSAGE": "x",
                                              "auth": "devaccesstoken"})
    assert oauth.status_code == 200


def test_block_lifts_when_the_oldest_bucket_expires(costly, clock):
    for _ in range(5):
        add(costly)  # minute 0: 300 s
    clock.advance(120)
    for _ in range(4):
        add(costly)  # minute 2: 240 s, 540 in all
    assert add(costly).status_code == 429
    clock.set(T0 + 599.5)
    assert add(costly).status_code == 429
    clock.set(T0 + 600)
    body = add(costly).get_json()
    assert body["time"]["operating"] == 300.0  # 240 left + this run
    assert body["time"]["operating_reset_at"] == int(T0) + 120 + 600


def test_failed_calls_are_billed_too(costly):
    for _ in range(9):
        costly.post(f"/rest/1/devtoken/{ADD}", json={"MESSAGE": "x"})  # 400 USER_ID_EMPTY
    assert add(costly).status_code == 429


def test_batch_is_not_billed_but_its_commands_are(costly):
    response = costly.post("/rest/1/devtoken/batch", json={"cmd": {
        "a": f"{ADD}?USER_ID=2&MESSAGE=a", "b": f"{ADD}?USER_ID=2&MESSAGE=b"}})
    body = response.get_json()
    assert body["time"]["operating"] == 0
    times = body["result"]["result_time"]
    assert (times["a"]["operating"], times["b"]["operating"]) == (60.0, 120.0)
    assert add(costly).get_json()["time"]["operating"] == 180.0


def test_fast_methods_count_nothing(client):
    for _ in range(20):
        assert add(client).get_json()["time"]["operating"] == 0


@pytest.mark.parametrize("overrides", [{"operating_limit": 0.0}, {"operating_limit": 10000.0}])
def test_limit_is_a_setting(settings, clock, overrides):
    client = create_app(settings.with_overrides(operating_costs=f"{ADD}=60", rate_limit="off",
                                                **overrides), clock=clock).test_client()
    assert all(add(client).status_code == 200 for _ in range(20))


def test_bad_cost_setting_is_a_clear_error(settings, clock):
    with pytest.raises(ConfigError, match="B24EMU_OPERATING_COSTS: 'im.notify=slow'"):
        create_app(settings.with_overrides(operating_costs="im.notify=slow"), clock=clock)


def test_expired_buckets_are_pruned(costly, clock, emulator):
    for _ in range(30):  # one costly call every two minutes for an hour: 300 s live at most
        assert add(costly).status_code == 200
        clock.advance(120)
    rows = emulator.database.query("SELECT count(*) AS n FROM operating_buckets")[0]["n"]
    assert rows <= 5  # without pruning: 30


def test_readme_example_over_real_http(tmp_path):
    """The README's example against `b24emu serve` on the real clock: a simulated cost is billed
    exactly (not on top of the measured run time), so the ninth call reports 540 and the tenth
    is refused."""
    import requests

    from tests.test_server import Server

    server = Server(tmp_path / "costly.sqlite3", "fixtures/default.json",
                    {"B24EMU_OPERATING_COSTS": f"{ADD}=60", "B24EMU_RATE_LIMIT": "off"})
    try:
        replies = [requests.post(f"{server.base}/rest/1/devtoken/{ADD}.json",
                                 json={"USER_ID": 2, "MESSAGE": f"call {n}"}, timeout=10)
                   for n in range(1, 11)]
    finally:
        server.stop()
    assert [reply.status_code for reply in replies] == [200] * 9 + [429]
    assert [reply.json()["time"]["operating"] for reply in replies[:9]] == [
        60.0 * n for n in range(1, 10)]
    assert replies[8].json()["time"]["operating"] == 540
    assert replies[9].json() == BLOCKED
