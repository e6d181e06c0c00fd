"""What every Celery task of hpcgate shares: queuing that survives a broker outage, the retry
policy of e-mail tasks, and the lock that keeps a periodic task from overlapping itself."""

import functools
import logging
import os
from collections.abc import Callable
from smtplib import SMTPException

from celery import current_app, shared_task
from django.conf import settings
from django.core.cache import cache
from kombu.exceptions import OperationalError as BrokerError

from core.locks import task_lock

logger = logging.getLogger(__name__)

# Publishing retries once, at once; after that a periodic sweep takes over, so nothing is lost.
# A request that queues work must not wait seconds for a broker that is down.
PUBLISH_RETRY = {"max_retries": 1, "interval_start": 0, "interval_step": 0.2, "interval_max": 0.2}
# After a failure nothing is published for this long: every request would wait for the same
# time-out, and the sweeps queue the work again once the broker is back.
BROKER_DOWN_PAUSE = 30
_BROKER_DOWN_KEY = "hpcgate:broker-down"


def broker_folders_ensure() -> None:
    """The file-system transport needs its folders before the first message is sent."""
    options = current_app.conf.broker_transport_options or {}
    for key in ("data_folder_in", "data_folder_out", "processed_folder", "control_folder"):
        if options.get(key):
            os.makedirs(options[key], exist_ok=True)


def publish(task, *args) -> bool:
    """Queue `task(*args)`; False (logged) when the broker stays unreachable.

    For work whose state is already committed: the caller's transaction must not fail
    because of the broker, and the sweep that owns the work queues it again later.
    """
    eager = current_app.conf.task_always_eager
    if not eager and cache.get(_BROKER_DOWN_KEY):
        logger.warning("Broker down: %s%r left for the periodic sweep", task.name, args)
        return False
    try:
        task.apply_async(args=args, retry=True, retry_policy=PUBLISH_RETRY)
    except (BrokerError, ConnectionError, TimeoutError, OSError):
        logger.exception("Could not queue %s%r; the periodic sweep will retry", task.name, args)
        if not eager:
            cache.set(_BROKER_DOWN_KEY, True, BROKER_DOWN_PAUSE)
        return False
    return True


def mail_task(func: Callable) -> Callable:
    """A task that sends e-mail: retried with back-off while the mail server does not answer.
    The function it wraps marks what it sent, so a retry never sends twice."""
    return shared_task(
        acks_late=True,
        autoretry_for=(SMTPException, ConnectionError, TimeoutError),
        retry_backoff=True,
        max_retries=8,
    )(func)


def periodic_task(lock_name: str) -> Callable[[Callable[[], str]], Callable]:
    """A scheduled task that never runs twice at once: a second copy returns at once."""

    def decorate(func: Callable[[], str]) -> Callable:
        @functools.wraps(func)
        def run() -> str:
            with task_lock(lock_name, timeout=settings.CELERY_TASK_TIME_LIMIT) as acquired:
                if not acquired:
                    return f"skipped: another {lock_name} run is in progress"
                return func()

        return shared_task(acks_late=True)(run)

    return decorate
