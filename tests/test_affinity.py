"""`B24EMU_PIN_WORKERS`: each `b24emu serve` worker pinned to one CPU (Linux)."""

from __future__ import annotations

import os
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
import requests
from b24emu.affinity import choose_cpu, pinned_processes

from tests.test_server import Server

pytestmark = pytest.mark.skipif(not hasattr(os, "sched_getaffinity"),
                                reason="CPU affinity is a Linux interface")


@pytest.mark.parametrize(("allowed", "siblings", "others", "chosen"), [
    ({0, 1}, [], [], [0, 1]),                 # nothing pinned: any, at random
    ({0, 1}, [{0}], [], [1]),                 # the second worker takes the other CPU
    ({0, 1}, [{0}, {1}], [], [0, 1]),         # a third shares with one of them
    ({0, 1, 2, 3}, [{0}, {2}, {1}], [], [3]),
    ({0, 1}, [{0, 1}], [], [0, 1]),           # a process allowed both is not pinned
    ({2, 3}, [{2}, {0}], [], [3]),            # only the allowed CPUs are chosen among
    ({0, 1, 2, 3}, [], [{0}, {1}, {1}], [2, 3]),  # other emulators' workers are avoided
    # its own siblings weigh first: spreading one server's workers matters most
    ({0, 1}, [{0}], [{1}, {1}, {1}], [1]),
    ({0, 1, 2}, [{0}], [{1}], [2]),
])
def test_a_worker_takes_the_cpu_the_fewest_processes_are_pinned_to(allowed, siblings, others,
                                                                    chosen):
    ties = []
    cpu = choose_cpu(allowed, siblings, others, pick=lambda cpus: ties.append(cpus) or cpus[0])
    assert ties == [chosen] and cpu == chosen[0]


def test_the_scan_finds_live_pinned_processes_only():
    cpu = max(os.sched_getaffinity(0))
    live = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    dead = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    try:
        os.sched_setaffinity(live.pid, {cpu})
        os.sched_setaffinity(dead.pid, {cpu})
        dead.kill()
        _until(lambda: _state(dead.pid) == "Z")  # exited, not yet waited for: a zombie
        found = pinned_processes()
        assert found.get(live.pid) == (os.getpid(), {cpu})
        assert dead.pid not in found
        assert os.getpid() not in found
        # kthreadd's children are each bound to a CPU (where this namespace shows them)
        assert [pid for pid, (ppid, _) in found.items() if ppid == 2] == []
    finally:
        for child in (live, dead):
            child.kill()
            child.wait()


def _state(pid: int) -> str:
    return Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()[0]


def _until(condition, timeout: float = 20) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.05)


def _workers(server: Server) -> list[int]:
    """The server process's children (its granian workers), oldest first."""
    found = []
    for entry in os.scandir("/proc"):
        if entry.name.isdigit():
            try:
                stat = Path(f"/proc/{entry.name}/stat").read_text()
            except OSError:
                continue
            if int(stat.rpartition(")")[2].split()[1]) == server.process.pid:
                found.append(int(entry.name))
    return sorted(found)


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
    found = []
    for tid in os.listdir(f"/proc/{pid}/task"):
        try:
            found.append(_status_cpus(pid, int(tid)))
        except FileNotFoundError:
            continue  # the thread ended meanwhile
    return found


def _pinned_workers(server: Server, count: int) -> list[tuple[int, set[int]]]:
    """The server's workers and their main threads' CPUs, once `count` workers have loaded
    (ready means one answered; another may still be loading)."""
    allowed = os.sched_getaffinity(0)
    found: list = []

    def loaded() -> bool:
        found[:] = [(pid, os.sched_getaffinity(pid)) for pid in _workers(server)]
        return len(found) == count and all(cpus != allowed for _, cpus in found)

    _until(loaded)
    return found


@pytest.mark.skipif(len(os.sched_getaffinity(0)) < 2, reason="one CPU: nothing to choose")
def test_each_worker_runs_on_a_cpu_of_its_own(tmp_path):
    allowed = os.sched_getaffinity(0)
    server = Server(tmp_path / "pin.sqlite3", "fixtures/default.json", workers=2)
    try:
        workers = _pinned_workers(server, 2)
        (first, a), (second, b) = workers
        assert len(a) == len(b) == 1 and a | b <= allowed
        assert a != b  # a server's own workers spread out first
        for pid, main in workers:
            # granian's runtime threads and the call pool start after the pin and keep it;
            # the checkpoint thread, started before, is the one that may run anywhere
            threads = _threads(pid)
            assert sorted(len(cpus) for cpus in threads if cpus != main) == [len(allowed)]
            assert len(threads) >= 3, threads
    finally:
        server.stop()


def test_a_server_allowed_one_cpu_runs_unpinned_and_answers(tmp_path):
    """Started with one allowed CPU (`taskset -c 0 b24emu serve`): there is nothing to choose
    (a pin would look the same), so what this shows is that such a server starts and serves."""
    allowed = os.sched_getaffinity(0)
    cpu = min(allowed)
    os.sched_setaffinity(0, {cpu})  # the server inherits it
    try:
        server = Server(tmp_path / "one.sqlite3", "fixtures/default.json", workers=2)
    finally:
        os.sched_setaffinity(0, allowed)
    try:
        assert len(_workers(server)) == 2
        answer = requests.get(f"{server.base}/rest/1/devtoken/server.time.json", timeout=10)
        assert answer.status_code == 200 and "result" in answer.json()
    finally:
        server.stop()


def test_pinning_can_be_turned_off(tmp_path):
    allowed = os.sched_getaffinity(0)
    server = Server(tmp_path / "free.sqlite3", "fixtures/default.json",
                    {"B24EMU_PIN_WORKERS": "no"}, workers=2)
    try:
        _until(lambda: len(_workers(server)) == 2)
        time.sleep(1)  # long enough for a worker that loads to have pinned itself
        for pid in _workers(server):
            assert all(cpus == allowed for cpus in _threads(pid))
    finally:
        server.stop()


@pytest.mark.skipif(len(os.sched_getaffinity(0)) < 2, reason="one CPU: nothing to choose")
def test_a_second_emulator_avoids_the_cpu_of_the_first(tmp_path):
    """Two servers at once (a CI job with one per test process): the second one's worker
    goes where the fewest processes are pinned, the first one's worker counted."""
    allowed = os.sched_getaffinity(0)
    before = {pid: cpus for pid, (_, cpus) in pinned_processes().items()}
    first = Server(tmp_path / "first.sqlite3", "fixtures/default.json", workers=1)
    try:
        ((one, a),) = _pinned_workers(first, 1)
        second = Server(tmp_path / "second.sqlite3", "fixtures/default.json", workers=1)
        try:
            ((two, b),) = _pinned_workers(second, 1)
            after = {pid: cpus for pid, (_, cpus) in pinned_processes().items()
                     if pid not in (one, two)}
        finally:
            second.stop()
    finally:
        first.stop()
    assert len(b) == 1 and b <= allowed
    if after != before:
        pytest.skip("other processes were pinned or ended meanwhile: the counts moved")
    counts = {cpu: sum(pins == {cpu} for pins in [*before.values(), a]) for cpu in allowed}
    (cpu,) = b
    assert counts[cpu] == min(counts.values()), (a, b, counts)
    assert a != b or min(counts.values()) > 0


def test_a_failure_to_pin_leaves_the_worker_unpinned_and_running(monkeypatch, caplog):
    from contextlib import contextmanager

    from b24emu import affinity

    @contextmanager
    def unavailable_lock():
        raise OSError(37, "No locks available")
        yield

    def refused(pid, cpus):
        raise OSError(22, "Invalid argument")  # a CPU taken offline meanwhile, say

    if len(os.sched_getaffinity(0)) < 2:
        pytest.skip("one CPU: pin_worker returns before it would choose")
    before = os.sched_getaffinity(0)
    with caplog.at_level("WARNING", logger="b24emu"):
        assert affinity.pin_worker(unavailable_lock()) is None
        monkeypatch.setattr(affinity.os, "sched_setaffinity", refused)
        assert affinity.pin_worker(threading.Lock()) is None
    assert os.sched_getaffinity(0) == before
    assert [record.getMessage().split(" was not pinned")[1] for record in caplog.records] == [
        " to a CPU ([Errno 37] No locks available); it runs on any",
        " to a CPU ([Errno 22] Invalid argument); it runs on any"]
