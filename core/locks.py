"""Locks that never outlive the process holding them.

A lock a killed process leaves behind stops everything it guards until somebody notices. So:

- on PostgreSQL, locks are session-level advisory locks: the server drops them the moment the
  holder's connection ends, whichever way the process died;
- elsewhere (SQLite, one machine by nature), a lock names the process holding it, and a lock
  whose process is gone is taken over at once.
"""

from __future__ import annotations

import hashlib
import os
import socket
from collections.abc import Iterator
from contextlib import contextmanager

from django.core.cache import cache
from django.db import connection, connections

HOST = socket.gethostname()


def this_process() -> str:
    return f"{HOST}:{os.getpid()}"


def process_alive(host: str, pid: int | None) -> bool | None:
    """Whether process `pid` on `host` still runs: True or False when `host` is this machine,
    None (unknown) for another machine or no pid."""
    if not pid or host != HOST:
        return None
    if pid == os.getpid():
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True  # someone else's process, alive
    try:  # a zombie has ended; only its exit status is left for its parent
        with open(f"/proc/{pid}/stat", encoding="ascii", errors="replace") as stat:
            return stat.read().rsplit(")", 1)[1].split()[0] != "Z"
    except (OSError, IndexError):
        return True


def advisory_key(name: str) -> int:
    """A signed 64-bit key for pg_advisory_lock from a lock's name."""
    return int.from_bytes(hashlib.sha256(name.encode()).digest()[:8], "big", signed=True)


@contextmanager
def session_lock(name: str) -> Iterator[bool]:
    """Yield True to the one caller holding the PostgreSQL session advisory lock `name`, on a
    connection of its own (Django's own may be closed and reopened while the work goes on);
    False at once when another session holds it. The lock ends with that connection."""
    lock = connections.create_connection("default")
    try:
        with lock.cursor() as cursor:
            cursor.execute("SELECT pg_try_advisory_lock(%s)", [advisory_key(name)])
            acquired = bool(cursor.fetchone()[0])
        yield acquired
    finally:
        lock.close()


@contextmanager
def task_lock(name: str, *, timeout: int) -> Iterator[bool]:
    """Yield True to the one caller holding the lock; a periodic task must not overlap itself.

    On PostgreSQL a session advisory lock: a task redelivered after its worker was killed
    finds it free at once. Elsewhere a cache entry naming this process, taken over when that
    process is gone; `timeout` (above the task's time limit) frees one of another machine.
    """
    if connection.vendor == "postgresql":
        with session_lock(f"hpcgate:task:{name}") as acquired:
            yield acquired
        return
    key = f"hpcgate:lock:{name}"
    holder = this_process()
    acquired = cache.add(key, holder, timeout)
    if not acquired:
        held_by = cache.get(key)
        host, _, pid = str(held_by or "").rpartition(":")
        if held_by and process_alive(host, int(pid) if pid.isdigit() else None) is False:
            cache.delete(key)
            acquired = cache.add(key, holder, timeout)
    try:
        yield acquired
    finally:
        if acquired and cache.get(key) == holder:
            cache.delete(key)
