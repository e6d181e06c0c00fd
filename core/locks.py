from collections.abc import Iterator
from contextlib import contextmanager

from django.core.cache import cache


@contextmanager
def task_lock(name: str, *, timeout: int) -> Iterator[bool]:
    """Yield True to the one caller holding the lock; a periodic task must not overlap itself.

    The timeout frees the lock of a worker that died; keep it above the task's time limit.
    """
    key = f"hpcgate:lock:{name}"
    acquired = cache.add(key, "1", timeout)
    try:
        yield acquired
    finally:
        if acquired:
            cache.delete(key)
