"""`B24EMU_PIN_WORKERS`: each `b24emu serve` worker on one CPU of its own (Linux)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from b24emu.affinity import choose_cpu

from tests.test_server import Server

pytestmark = pytest.mark.skipif(not hasattr(os, "sched_getaffinity"),
                                reason="CPU affinity is a Linux interface")


@pytest.mark.parametrize(("allowed", "siblings", "chosen"), [
    ({0, 1}, [], 0),
    ({0, 1}, [{0}], 1),                 # the second worker takes the other CPU
    ({0, 1}, [{0}, {1}], 0),            # a third shares with the lowest
    ({0, 1, 2, 3}, [{0}, {2}, {1}], 3),
    ({0, 1}, [{0, 1}], 0),              # an unpinned sibling counts for no CPU
    ({2, 3}, [{2}, {0}], 3),            # only the allowed CPUs are chosen among
    ({0, 1}, [{1}, {1}, {0}], 0),
])
def test_a_worker_takes_the_cpu_the_fewest_siblings_run_on(allowed, siblings, chosen):
    assert choose_cpu(allowed, siblings) == chosen


def _workers(server: Server) -> list[int]:
    children = Path(f"/proc/{server.process.pid}/task/{server.process.pid}/children")
    return [int(pid) for pid in children.read_text().split()]


def _status_cpus(pid: int, tid: int) -> set[int]:
    for line in Path(f"/proc/{pid}/task/{tid}/status").read_text().splitlines():
        if line.startswith("Cpus_allowed_list:"):
            cpus: set[int] = set()
            for part in line.split(":", 1)[1].strip().split(","):
                low, _, high = part.partition("-")
                cpus.update(range(int(low), int(high or low) + 1))
            return cpus
    raise AssertionError(f"no Cpus_allowed_list for {pid}/{tid}")


def _threads(pid: int) -> list[set[int]]:
    return [_status_cpus(pid, int(tid)) for tid in os.listdir(f"/proc/{pid}/task")]


def test_each_worker_runs_on_a_cpu_of_its_own(tmp_path):
    allowed = os.sched_getaffinity(0)
    server = Server(tmp_path / "pin.sqlite3", "fixtures/default.json", workers=2)
    try:
        workers = _workers(server)
        assert len(workers) == 2
        mains = [os.sched_getaffinity(pid) for pid in workers]
        if len(allowed) >= 2:
            assert all(len(cpus) == 1 and cpus <= allowed for cpus in mains), mains
            assert mains[0] != mains[1]  # spread out, not stacked on one CPU
            for pid, main in zip(workers, mains, strict=True):
                # granian's runtime threads start after the pin and keep it; the checkpoint
                # thread, started before, may run anywhere.
                threads = _threads(pid)
                assert sum(cpus == main for cpus in threads) >= 2, threads
                assert allowed in threads, threads
        else:  # one CPU: nothing to choose, nothing changed
            assert mains == [allowed, allowed]
    finally:
        server.stop()


def test_pinning_can_be_turned_off(tmp_path):
    allowed = os.sched_getaffinity(0)
    server = Server(tmp_path / "free.sqlite3", "fixtures/default.json",
                    {"B24EMU_PIN_WORKERS": "no"}, workers=2)
    try:
        for pid in _workers(server):
            assert all(cpus == allowed for cpus in _threads(pid))
    finally:
        server.stop()
