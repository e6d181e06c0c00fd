import logging
import os

from celery import Celery
from celery.signals import worker_init

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")


app = Celery("hpcgate")


app.config_from_object("django.conf:settings", namespace="CELERY")


app.autodiscover_tasks()


logger = logging.getLogger(__name__)


def broker_folders_ensure() -> None:
    """The file-system transport needs its folders before the first message is sent."""
    options = app.conf.broker_transport_options or {}
    for key in ("data_folder_in", "data_folder_out", "processed_folder", "control_folder"):
        if options.get(key):
            os.makedirs(options[key], exist_ok=True)


@worker_init.connect
def _worker_init(**kwargs) -> None:
    broker_folders_ensure()
