"""Confidential reporting: no account, no name, nothing about the reporter kept; encrypted at
rest; read by governance officers only; the reporter comes back with the case key alone."""

import importlib.util
import logging
import re
from datetime import date
from io import StringIO
from pathlib import Path

import pytest
from cryptography.fernet import Fernet
from django.contrib.auth import get_user_model
from django.core import mail
from django.core.management import call_command
from django.db import connection
from django.test import Client

from compliance import views
from compliance.checks import report_encryption_key_check
from compliance.confidential import case_key_digest, seal, unseal
from compliance.models import MisuseReport, ReportMessage
from compliance.privacy import ReportingChannelFilter
from compliance.services import report_acknowledge, report_close, report_reply, report_submit
from tests.compliance.factories import REPORT_TEXT
from tests.conftest import client_for

ROOT = Path(__file__).resolve().parents[2]
TEXT = REPORT_TEXT
KEY = re.compile(r'<code id="case-key"[^>]*>([A-Z2-7-]+)</code>')


def _report(client, text=TEXT, category="split_run", **extra):
    form = client.get("/report/").content.decode()
    token = re.search(r'name="form_token" value="([^"]+)"', form).group(1)
    return client.post(
        "/report/", {"category": category, "text": text, "form_token": token}, **extra
    )


def _key(response) -> str:
    return KEY.search(response.content.decode()).group(1)


@pytest.mark.django_db
def test_anyone_reports_without_an_account_and_is_shown_a_case_key_once(client):
    response = _report(client)

    assert response.status_code == 200
    key = _key(response)
    assert len(key.replace("-", "")) == 32  # 160 random bits in base 32
    report = MisuseReport.objects.get()
    assert report.category == "split_run"
    assert report.case_digest == case_key_digest(key)
    assert key not in report.case_digest
    assert response["Cache-Control"].startswith("max-age=0")
    assert "no-store" in response["Cache-Control"]
    assert response["Referrer-Policy"] == "same-origin"


@pytest.mark.django_db
def test_what_the_reporter_wrote_is_stored_encrypted(client):
    _report(client)
    with connection.cursor() as cursor:
        cursor.execute(f"SELECT body_sealed FROM {ReportMessage._meta.db_table}")
        (stored,) = cursor.fetchone()
    assert "LUMI" not in stored and "Acme" not in stored
    assert unseal(stored) == TEXT


@pytest.mark.django_db
def test_no_address_browser_or_account_is_kept(client, applicant):
    client_for(client, applicant)
    response = _report(
        client,
        REMOTE_ADDR="203.0.113.77",
        HTTP_USER_AGENT="ReporterBrowser/9.9",
        HTTP_X_FORWARDED_FOR="198.51.100.23",
    )
    key = _key(response)
    assert "You are logged in" in client.get("/report/").content.decode()
    dump = StringIO()
    call_command("dumpdata", "compliance", stdout=dump)
    for trace in ("203.0.113.77", "198.51.100.23", "ReporterBrowser", "founder", key):
        assert trace not in dump.getvalue()
    assert "received_on" in dump.getvalue()


@pytest.mark.django_db
def test_the_reporting_pages_set_no_cookie_but_the_csrf_one(client):
    page = client.get("/report/")
    assert set(page.cookies) == {"csrftoken"}
    response = _report(Client())
    assert set(response.cookies) <= {"csrftoken"}
    case = Client().post("/report/case/", {"case_key": _key(response)})
    assert "sessionid" not in case.cookies
    assert set(case.cookies) <= {"csrftoken"}


@pytest.mark.django_db
def test_a_report_without_the_csrf_token_is_refused(caplog):
    forged = Client(enforce_csrf_checks=True)
    with caplog.at_level(logging.DEBUG):
        response = forged.post("/report/", {"category": "split_run", "text": TEXT})
    assert response.status_code == 403
    assert not MisuseReport.objects.exists()
    # and the refusal, which Django logs with the path, leaves no line about the page
    assert not [r for r in caplog.records if "/report/" in r.getMessage()]


@pytest.mark.django_db
def test_other_pages_still_log_refusals(caplog):
    with caplog.at_level(logging.WARNING):
        Client(enforce_csrf_checks=True).post("/organisations/new/", {})
    assert [r for r in caplog.records if "/organisations/new/" in r.getMessage()]


def test_the_log_filter_drops_development_server_lines_about_reports():
    quiet = ReportingChannelFilter()

    def record(message, name="django.server"):
        return logging.LogRecord(name, logging.INFO, __file__, 1, message, (), None)

    assert not quiet.filter(record('"POST /report/case/ HTTP/1.1" 200 2310'))
    assert quiet.filter(record('"GET /apply/ HTTP/1.1" 200 2310'))


def test_gunicorn_access_log_leaves_out_the_reporting_pages(monkeypatch):
    from gunicorn.config import Config
    from gunicorn.glogging import Logger

    spec = importlib.util.spec_from_file_location("gunicorn_conf", ROOT / "gunicorn.conf.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    written = []
    monkeypatch.setattr(Logger, "access", lambda self, resp, req, environ, t: written.append(1))
    log = module.logger_class(Config())
    log.access(None, None, {"PATH_INFO": "/report/case/"}, None)
    assert written == []
    log.access(None, None, {"PATH_INFO": "/apply/"}, None)
    assert written == [1]


@pytest.mark.django_db
def test_sending_the_same_form_twice_opens_one_case(client):
    form = client.get("/report/").content.decode()
    token = re.search(r'name="form_token" value="([^"]+)"', form).group(1)
    data = {"category": "misuse", "text": TEXT, "form_token": token}
    first = client.post("/report/", data)
    again = client.post("/report/", data)
    assert KEY.search(first.content.decode())
    assert not KEY.search(again.content.decode())
    assert "had been sent already" in again.content.decode()
    assert MisuseReport.objects.count() == 1


@pytest.mark.django_db
def test_the_case_key_opens_the_case_with_the_replies(client, governance_officer):
    key = _key(_report(client))
    report = MisuseReport.objects.get()
    report_reply(report=report, officer=governance_officer, text="Thank you; we are checking.")

    page = Client().post("/report/case/", {"case_key": key.lower().replace("-", " ")})

    text = page.content.decode()
    assert TEXT in text
    assert "Thank you; we are checking." in text
    assert "gov" not in re.sub(r"<[^>]+>", "", text.split('id="conversation"')[1])
    assert "Acknowledged on" in text
    assert text.count("Thank you; we are checking.") == 1  # once, in the conversation


@pytest.mark.django_db
def test_a_wrong_key_or_a_key_in_the_address_shows_nothing(client):
    key = _key(_report(client))
    wrong = Client().post("/report/case/", {"case_key": "AAAA-BBBB-CCCC-DDDD"}).content.decode()
    assert "No case has this key" in wrong
    assert TEXT not in wrong
    in_address = Client().get(f"/report/case/?case_key={key}").content.decode()
    assert TEXT not in in_address


@pytest.mark.django_db
def test_the_reporter_adds_to_the_report_and_officers_hear_of_it_without_the_text(
    client, governance_officer, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks(execute=True):
        key = _key(_report(client))
    (received,) = mail.outbox
    assert received.to == [governance_officer.email]
    assert "case" in received.subject and "LUMI" not in received.body
    assert "/admin/compliance/misusereport/" in received.body

    with django_capture_on_commit_callbacks(execute=True):
        page = Client().post("/report/case/", {"case_key": key, "text": "Job ids 4411, 4412."})

    assert "Your addition was sent." in page.content.decode()
    assert "Job ids 4411, 4412." in page.content.decode()
    assert MisuseReport.objects.get().messages.count() == 2
    assert "added" in mail.outbox[-1].subject and "4411" not in mail.outbox[-1].body


@pytest.mark.django_db
def test_a_closed_case_takes_no_more_additions(client, governance_officer):
    key = _key(_report(client))
    report_close(report=MisuseReport.objects.get(), officer=governance_officer, outcome="referred")
    page = Client().post("/report/case/", {"case_key": key, "text": "More."}).content.decode()
    assert "Referred to the competent authority" in page
    assert "More." not in page


@pytest.mark.django_db
def test_without_an_encryption_key_the_channel_is_closed(client, settings):
    settings.REPORT_ENCRYPTION_KEY = ""
    assert client.get("/report/").status_code == 503
    assert client.post("/report/case/", {"case_key": "x"}).status_code == 503
    assert [m.id for m in report_encryption_key_check(None)] == ["compliance.W001"]


@pytest.mark.django_db
def test_keys_rotate_the_first_encrypts_and_all_decrypt(settings):
    old, new = Fernet.generate_key().decode(), Fernet.generate_key().decode()
    settings.REPORT_ENCRYPTION_KEY = old
    sealed_before = seal("before")
    settings.REPORT_ENCRYPTION_KEY = f"{new},{old}"
    assert unseal(sealed_before) == "before"
    sealed_after = seal("after")
    settings.REPORT_ENCRYPTION_KEY = new
    assert unseal(sealed_after) == "after"


@pytest.mark.django_db
def test_the_site_wide_limit_turns_reports_away_for_the_hour(client, monkeypatch):
    monkeypatch.setattr(views, "REPORTS_PER_HOUR", 1)
    assert KEY.search(_report(client).content.decode())
    busy = _report(client)
    assert busy.status_code == 429
    assert MisuseReport.objects.count() == 1


# The governance officers' side, in the admin


@pytest.fixture
def report(db):
    return report_submit(category="split_run", text=TEXT).report


@pytest.mark.django_db
def test_only_governance_officers_read_reports(
    client, report, governance_officer, operator, call_manager
):
    url = f"/admin/compliance/misusereport/{report.pk}/change/"
    page = client_for(client, governance_officer).get(url)
    assert page.status_code == 200
    assert TEXT in page.content.decode()
    for other in (operator, call_manager):
        assert client_for(Client(), other).get(url).status_code in (302, 403)
        assert client_for(Client(), other).get("/admin/compliance/misusereport/").status_code in (
            302,
            403,
        )
    root = get_user_model().objects.create_superuser("root", "root@example.eu", "pw-root-1234")
    assert client_for(Client(), root).get(url).status_code in (302, 403)
    assert "misusereport" not in client_for(Client(), root).get("/admin/").content.decode()


@pytest.mark.django_db
def test_governance_replies_links_and_records_the_outcome_in_the_admin(
    client, report, governance_officer, reference_data
):
    from organisations.models import Organisation

    acme = Organisation.objects.create(legal_name="Acme AI", country="DE", registration_id="DE1")
    url = f"/admin/compliance/misusereport/{report.pk}/change/"
    c = client_for(client, governance_officer)
    page = c.get(url).content.decode()
    assert f"due {report.acknowledgement_due:%Y-%m-%d}" in page

    done = c.post(
        url,
        {
            "category": "split_run",
            "organisations": [acme.pk],
            "acknowledge": "on",
            "reply": "We have asked both companies for their job lists.",
        },
        follow=True,
    )

    assert done.status_code == 200
    report.refresh_from_db()
    assert report.status == "acknowledged"
    assert report.acknowledged_on == report.received_on
    assert report.feedback_on == report.received_on
    assert list(report.organisations.all()) == [acme]
    texts = [unseal(m.body_sealed) for m in report.messages.all()]
    assert texts[0] == TEXT
    assert texts[1].startswith("Your report has been received")
    assert texts[2] == "We have asked both companies for their job lists."
    assert report.messages.last().officer == governance_officer

    c.post(
        url,
        {"category": "split_run", "close_with": "action_taken", "outcome_note": "Quota merged."},
    )
    report.refresh_from_db()
    assert (report.status, report.outcome) == ("closed", "action_taken")
    assert unseal(report.outcome_note_sealed) == "Quota merged."
    assert "Quota merged." in c.get(url).content.decode()


@pytest.mark.django_db
def test_a_reply_to_a_closed_case_is_refused(client, report, governance_officer):
    report_close(report=report, officer=governance_officer, outcome="insufficient")
    page = client_for(client, governance_officer).post(
        f"/admin/compliance/misusereport/{report.pk}/change/",
        {"category": "split_run", "reply": "Late."},
    )
    assert "This case is closed." in page.content.decode()
    assert report.messages.count() == 1


@pytest.mark.parametrize(
    ("received", "acknowledged", "acknowledge_by", "feedback_by"),
    [
        (date(2026, 3, 2), None, date(2026, 3, 9), date(2026, 6, 9)),
        (date(2026, 3, 2), date(2026, 3, 4), date(2026, 3, 9), date(2026, 6, 4)),
        (date(2026, 11, 23), None, date(2026, 11, 30), date(2027, 2, 28)),
    ],
)
def test_deadlines_of_the_whistleblower_directive(
    received, acknowledged, acknowledge_by, feedback_by
):
    report = MisuseReport(received_on=received, acknowledged_on=acknowledged)
    assert report.acknowledgement_due == acknowledge_by
    assert report.feedback_due == feedback_by


@pytest.mark.django_db
def test_acknowledging_twice_sends_one_acknowledgement(report, governance_officer):
    assert report_acknowledge(report=report, officer=governance_officer) is not None
    assert report_acknowledge(report=report, officer=governance_officer) is None
    assert report.messages.filter(author="officer").count() == 1


def test_a_key_that_is_not_a_fernet_key_fails_the_system_check(settings):
    from compliance.checks import report_encryption_keys_check

    settings.REPORT_ENCRYPTION_KEY = f"{Fernet.generate_key().decode()},replace-with-a-fernet-key"
    assert [e.id for e in report_encryption_keys_check(None)] == ["compliance.E001"]
    settings.REPORT_ENCRYPTION_KEY = Fernet.generate_key().decode()
    assert report_encryption_keys_check(None) == []
