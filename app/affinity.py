"""Each `b24emu serve` worker pinned to one CPU (Linux; `B24EMU_PIN_WORKERS`).

A call crosses threads inside a worker: granian's Rust thread reads the request and wakes the
worker's event loop, which answers and hands the bytes back. When the kernel runs those threads
on different CPUs, every hand-off wakes the other CPU (an inter-processor interrupt, dear in a
virtual machine); on one CPU it is a plain context switch. `make bench` measured the difference
(README, Performance).

A worker pins its own main thread while it loads, before granian starts the worker's runtime
threads, which inherit the pin (so do the call pool's threads, started later); threads started
earlier (the checkpoint thread, event delivery threads resumed at start-up) stay free to run on
any CPU. The CPU is not reserved: the worker takes, among the CPUs it may use, the one the
fewest of its sibling workers are pinned to, then of those the one the fewest other processes
it can see are pinned to (the workers of other emulators running beside it, say one per test
process of a CI job), then one at random, so that emulators that cannot see each other (in
separate containers) do not all start on the same first CPUs. One server's workers choose under
the database's write lock, so those that start together spread out.

Pinning is an optimisation: anything that goes wrong while choosing or pinning is logged and the
worker runs unpinned.
"""

from __future__ import annotations

import logging
import os
import random
from collections.abc import Iterable

log = logging.getLogger("b24emu")
_PF_KTHREAD = 0x00200000  # a kernel thread (include/linux/sched.h)


def choose_cpu(allowed: Iterable[int], siblings: Iterable[set[int]],
               others: Iterable[set[int]], pick=random.choice) -> int:
    """The allowed CPU the fewest `siblings` are pinned to, then the fewest `others`; `pick`
    chooses among CPUs equal on both. A process allowed more than one CPU is not pinned and
    counts for none."""
    def counts(processes: Iterable[set[int]]) -> dict[int, int]:
        found = dict.fromkeys(allowed, 0)
        for cpus in processes:
            if len(cpus) == 1:
                (cpu,) = cpus
                if cpu in found:
                    found[cpu] += 1
        return found

    by_siblings, by_others = counts(siblings), counts(others)
    best = min((by_siblings[cpu], by_others[cpu]) for cpu in by_siblings)
    return pick(sorted(cpu for cpu in by_siblings
                       if (by_siblings[cpu], by_others[cpu]) == best))


def pinned_processes() -> dict[int, tuple[int, set[int]]]:
    """Process id to (parent id, CPU set) for every other live user process this one can see
    whose main thread may run on one CPU only. Kernel threads (each bound to its CPU) and
    processes that have exited are left out."""
    own = os.getpid()
    found = {}
    for entry in os.scandir("/proc"):
        if not entry.name.isdigit() or int(entry.name) == own:
            continue
        pid = int(entry.name)
        try:
            cpus = os.sched_getaffinity(pid)
            if len(cpus) != 1:
                continue  # most processes: one system call, no file read
            with open(f"/proc/{pid}/stat", "rb") as stat:
                # "pid (name) state ppid pgrp session tty tpgid flags ...": the name may hold
                # spaces and parentheses.
                fields = stat.read().rpartition(b")")[2].split()
        except (OSError, ValueError):
            continue  # it ended meanwhile, or is not ours to read
        if len(fields) < 7 or fields[0] in (b"Z", b"X") or int(fields[6]) & _PF_KTHREAD:
            continue
        found[pid] = (int(fields[1]), cpus)
    return found


def pin_worker(lock) -> int | None:
    """Pin the calling thread (and every thread it starts from now on) to the CPU `choose_cpu`
    picks; `lock` (a context manager shared by the server's workers) keeps the choices of
    workers that start together apart. The CPU, or None when nothing was pinned: one allowed
    CPU, no way to pin (not Linux), or an error (logged; the worker runs unpinned)."""
    if not hasattr(os, "sched_setaffinity") or not os.path.isdir("/proc"):
        return None
    try:
        allowed = os.sched_getaffinity(0)
        if len(allowed) < 2:
            return None
        with lock:
            parent = os.getppid()
            pinned = pinned_processes().values()
            cpu = choose_cpu(allowed, [cpus for ppid, cpus in pinned if ppid == parent],
                             [cpus for ppid, cpus in pinned if ppid != parent])
            os.sched_setaffinity(0, {cpu})
    except OSError as error:
        log.warning("worker %s was not pinned to a CPU (%s); it runs on any", os.getpid(),
                    error)
        return None
    log.debug("worker %s runs on CPU %s", os.getpid(), cpu)
    return cpu
