"""Site-wide plumbing: the favicon, and how refused requests are logged."""

import logging

import pytest

from tests.conftest import client_for

pytestmark = pytest.mark.django_db


def test_favicon_ico_leads_to_the_site_icon(client):
    response = client.get("/favicon.ico")
    assert response.status_code == 301
    assert response["Location"].endswith("/static/img/favicon.svg")


def test_admin_pages_name_the_icon(client, call_manager):
    text = client_for(client, call_manager).get("/admin/").content.decode()
    assert 'rel="icon" href="/static/img/favicon.svg"' in text


def test_a_refused_request_is_logged_once_without_a_traceback(client, reviewer, caplog):
    client_for(client, reviewer)  # staff, but no business with the annual report
    with caplog.at_level(logging.INFO):
        response = client.get("/governance/annual-report/")
    assert response.status_code == 403
    refused = [r for r in caplog.records if getattr(r, "status_code", None) == 403]
    assert refused, [r.getMessage() for r in caplog.records]
    assert len(refused) == 1
    (record,) = refused
    assert record.exc_info is None and not record.exc_text
    assert "Forbidden" in record.getMessage()
