from unittest import mock

import pytest
from django.db.backends.base.base import BaseDatabaseWrapper


@pytest.mark.django_db
def test_healthz_answers_200_when_the_database_answers(client):
    response = client.get("/healthz")
    assert response.status_code == 200
    assert response.json()["status"] == "ok"


@pytest.mark.django_db
def test_healthz_answers_503_with_reason_when_the_database_is_down(client, caplog):
    failure = RuntimeError('connection to "db.internal" port 5432 failed for user "hpcgate"')
    with mock.patch.object(BaseDatabaseWrapper, "cursor", side_effect=failure):
        response = client.get("/healthz")
    assert response.status_code == 503
    assert response.json()["problems"] == ["database: does not answer (RuntimeError)"]
    assert "db.internal" not in response.content.decode()  # the page is public
    assert "db.internal" in caplog.text  # the operator's log has it


@pytest.mark.django_db
def test_healthz_answers_503_when_a_configured_broker_is_down(client, settings):
    from config.celery import app

    settings.CELERY_BROKER_CONFIGURED = True
    unreachable = app.connection_for_write("redis://127.0.0.1:1/0")
    with mock.patch.object(app, "connection_for_write", return_value=unreachable):
        response = client.get("/healthz")
    assert response.status_code == 503
    assert response.json()["problems"][0].startswith("broker:")


@pytest.mark.django_db
def test_probes_reach_healthz_by_address_and_over_plain_http(client, settings):
    settings.ALLOWED_HOSTS = ["hpcgate.example.eu"]
    settings.SECURE_SSL_REDIRECT = True
    response = client.get("/healthz", HTTP_HOST="127.0.0.1:8000")
    assert response.status_code == 200
    assert response.json()["status"] == "ok"
    assert client.get("/", HTTP_HOST="127.0.0.1:8000").status_code == 400  # the rest stays shut


@pytest.mark.django_db
def test_livez_answers_while_the_database_and_broker_are_down(client, settings):
    settings.CELERY_BROKER_CONFIGURED = True
    failure = RuntimeError("database down")
    with mock.patch.object(BaseDatabaseWrapper, "cursor", side_effect=failure):
        response = client.get("/livez", HTTP_HOST="10.0.0.7:8000")
    assert response.status_code == 200
    assert response.json() == {"status": "ok"}


@pytest.mark.django_db
def test_queueing_work_with_the_broker_down_does_not_wait(monkeypatch, settings):
    import time

    from config.celery import app
    from core.tasks import publish
    from vetting.tasks import application_screen

    monkeypatch.setattr(app.conf, "task_always_eager", False)
    monkeypatch.setattr(app.conf, "broker_connection_timeout", 1)
    unreachable = app.connection_for_write(
        "redis://127.0.0.1:1/0", transport_options={"socket_connect_timeout": 1}
    )
    monkeypatch.setattr(app, "connection_for_write", lambda *a, **k: unreachable.clone())
    monkeypatch.setattr(app, "_pool", None)
    monkeypatch.setattr(app.amqp, "_producer_pool", None)
    try:
        started = time.monotonic()
        assert publish(application_screen, 1) is False
        first = time.monotonic() - started
        started = time.monotonic()
        assert publish(application_screen, 2) is False
        second = time.monotonic() - started
    finally:
        app.pool.force_close_all()
        app.amqp._producer_pool = None
    assert first < 3
    assert second < 0.1  # the sweep takes over; nobody waits for the same time-out again
