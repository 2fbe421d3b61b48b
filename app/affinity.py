"""Each `b24emu serve` worker on a CPU of its own (Linux; `B24EMU_PIN_WORKERS`).

A call crosses threads inside a worker: granian's Rust thread reads the request and wakes the
worker's event loop, which answers and hands the bytes back. When the kernel runs those threads
on different CPUs, every hand-off wakes the other CPU (an inter-processor interrupt, dear in a
virtual machine); on one CPU it is a plain context switch. `make bench` measured the difference
(README, Performance).

A worker pins its own main thread while it loads, before granian starts the worker's runtime
threads, which inherit the pin (so do the call pool's threads, started later); a thread started
earlier (the checkpoint thread) stays free to run on any CPU. The worker takes the allowed CPU
that the fewest of its sibling workers (the other children of the same server process) are
pinned to, under a lock, so workers that start together spread out over the CPUs.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Iterable

log = logging.getLogger("b24emu")


def choose_cpu(allowed: Iterable[int], siblings: Iterable[set[int]]) -> int:
    """The allowed CPU the fewest siblings are pinned to (the lowest numbered of a tie); a
    sibling allowed more than one CPU is not pinned and counts for none."""
    counts = dict.fromkeys(sorted(allowed), 0)
    for cpus in siblings:
        if len(cpus) == 1:
            (cpu,) = cpus
            if cpu in counts:
                counts[cpu] += 1
    return min(counts, key=lambda cpu: (counts[cpu], cpu))


def sibling_cpus() -> list[set[int]]:
    """The CPUs each other child of this process's parent may run on (its main thread's)."""
    parent, own = os.getppid(), os.getpid()
    found = []
    for entry in os.scandir("/proc"):
        if not entry.name.isdigit() or int(entry.name) == own:
            continue
        try:
            with open(f"/proc/{entry.name}/stat", "rb") as stat:
                # "pid (name) state ppid ...": the name may hold spaces and parentheses.
                ppid = int(stat.read().rpartition(b")")[2].split()[1])
            if ppid == parent:
                found.append(os.sched_getaffinity(int(entry.name)))
        except (OSError, ValueError, IndexError):
            continue  # it ended meanwhile, or is not ours to read
    return found


def pin_worker(lock) -> int | None:
    """Pin the calling thread (and every thread it starts from now on) to one CPU chosen by
    `choose_cpu`; `lock` (a context manager shared by the workers) keeps the choices of
    workers that start together apart. The CPU, or None where there is nothing to choose (one
    allowed CPU) or no way to pin (not Linux)."""
    if not hasattr(os, "sched_setaffinity") or not os.path.isdir("/proc"):
        return None
    allowed = os.sched_getaffinity(0)
    if len(allowed) < 2:
        return None
    with lock:
        cpu = choose_cpu(allowed, sibling_cpus())
        os.sched_setaffinity(0, {cpu})
    log.debug("worker %s runs on CPU %s", os.getpid(), cpu)
    return cpu
