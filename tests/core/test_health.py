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
