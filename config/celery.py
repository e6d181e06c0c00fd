import logging
import os

from celery import Celery
from celery.signals import worker_init
from kombu.exceptions import OperationalError as BrokerError

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")

app = Celery("hpcgate")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()

logger = logging.getLogger(__name__)

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


def broker_folders_ensure() -> None:
    """The file-system transport needs its folders before the first message is sent."""
    options = app.conf.broker_transport_options or {}
    for key in ("data_folder_in", "data_folder_out", "processed_folder", "control_folder"):
        if options.get(key):
            os.makedirs(options[key], exist_ok=True)


@worker_init.connect
def _worker_init(**kwargs) -> None:
    broker_folders_ensure()
