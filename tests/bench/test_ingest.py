import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from bench.ingest import _proportional_kib

pytestmark = pytest.mark.skipif(
    _proportional_kib(os.getpid()) is None, reason="the kernel reports no proportional sizes"
)

CHILD_MB = 64

# Measured in a fresh interpreter: a test worker's own size can move by megabytes between the
# two readings, a process that holds only what it allocated hardly does.
_MEASURE = f"""
import json, multiprocessing, time
from bench.ingest import _SharedPeak

def hold(ready, release):
    held = bytearray({CHILD_MB} << 20)
    held[::4096] = b"\\x01" * len(held[::4096])  # every page touched, so resident
    ready.set()
    release.wait(10)

# as large as an importer, so that counting what the child shares twice would show
ballast = bytearray(256 << 20)
ballast[::4096] = b"\\x01" * len(ballast[::4096])
with _SharedPeak() as alone:
    time.sleep(3 * _SharedPeak.INTERVAL)
forked = multiprocessing.get_context("fork")
ready, release = forked.Event(), forked.Event()
child = forked.Process(target=hold, args=(ready, release))
with _SharedPeak() as together:
    child.start()
    assert ready.wait(10)
    time.sleep(3 * _SharedPeak.INTERVAL)
    release.set()
    child.join(10)
print(json.dumps([alone.mb, together.mb]))
"""


def test_the_peak_adds_the_parsing_process_and_counts_shared_pages_once():
    measured = subprocess.run(
        [sys.executable, "-c", _MEASURE],
        cwd=Path(__file__).resolve().parents[2],
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    alone, together = json.loads(measured.stdout)
    # What the child allocated counts; what it shares with this process after the fork does
    # not count twice (resident sizes would add this whole process again).
    assert together >= alone + CHILD_MB * 0.9
    assert together <= alone + CHILD_MB * 1.1 + 16
