from kombu.exceptions import OperationalError as BrokerError

from config.celery import logger

# Publishing retries for a moment; after that a periodic sweep takes over, so nothing is lost.
PUBLISH_RETRY = {"max_retries": 3, "interval_start": 0.5, "interval_step": 1, "interval_max": 3}


def publish(task, *args) -> bool:
    """Queue `task(*args)`; False (logged) when the broker stays unreachable.

    For work whose state is already committed: the caller's transaction must not fail
    because of the broker, and the sweep that owns the work queues it again later.
    """
    try:
        task.apply_async(args=args, retry=True, retry_policy=PUBLISH_RETRY)
    except (BrokerError, ConnectionError, TimeoutError, OSError):
        logger.exception("Could not queue %s%r; the periodic sweep will retry", task.name, args)
        return False
    return True
