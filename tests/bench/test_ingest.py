import multiprocessing
import os
import time

import pytest

from bench.ingest import _proportional_kib, _SharedPeak

pytestmark = pytest.mark.skipif(
    _proportional_kib(os.getpid()) is None, reason="the kernel reports no proportional sizes"
)

CHILD_MB = 64


def _hold_memory(ready, release) -> None:
    held = bytearray(CHILD_MB << 20)
    held[::4096] = b"\x01" * len(held[::4096])  # every page touched, so resident
    ready.set()
    release.wait(10)


def test_the_peak_adds_the_parsing_process_and_counts_shared_pages_once():
    with _SharedPeak() as alone:
        time.sleep(3 * _SharedPeak.INTERVAL)
    forked = multiprocessing.get_context("fork")
    ready, release = forked.Event(), forked.Event()
    child = forked.Process(target=_hold_memory, args=(ready, release))
    with _SharedPeak() as together:
        child.start()
        assert ready.wait(10)
        time.sleep(3 * _SharedPeak.INTERVAL)
        release.set()
        child.join(10)
    # What the child allocated counts; what it shares with this process after the fork does
    # not count twice (resident sizes would add this whole process again).
    assert together.mb >= alone.mb + CHILD_MB * 0.9
    assert together.mb <= alone.mb + CHILD_MB * 1.1 + 16
