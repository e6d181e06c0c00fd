"""POST /api/v1/usage/imports/: uploads stored and queued (202), imported by a worker, followed at
the run's URL with the same summary as import_usage; for operators and sites."""

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile

from core.services import token_create
from tests.factories import make_allocation, make_cluster
from tests.usage.sacct import FOX_FIELDS, SINCE, sacct_line, sacct_text, sample
from usage.importer import usage_import
from usage.models import UsageImport, UsageRecord
from usage.tasks import usage_upload_import
from usage.uploads import MAX_ATTEMPTS

pytestmark = pytest.mark.django_db

URL = "/api/v1/usage/imports/"


@pytest.fixture(autouse=True)
def uploads(settings, tmp_path):
    settings.USAGE_SPOOL_DIR = tmp_path / "spool"
    return settings.USAGE_SPOOL_DIR / ".uploads"


@pytest.fixture
def leonardo(reference_data):
    make_allocation(start=SINCE, cluster="leonardo", account="acme_llm")


def post_text(client, text: str, **params):
    query = "&".join(f"{key}={value}" for key, value in params.items())
    return client.post(f"{URL}?{query}", data=text.encode(), content_type="text/plain")


def worker_runs(response) -> None:
    """What the worker does with the message the push queued."""
    assert response.status_code == 202, response.content
    usage_upload_import(response.json()["id"])


def pushed(client, text: str, **params) -> dict:
    """Push `text`, let the worker import it, and read the run back at its URL."""
    response = post_text(client, text, **params)
    worker_runs(response)
    result = client.get(response["Location"])
    assert result.status_code == 200, result.content
    return result.json()


def test_operator_imports_a_plain_text_body_with_a_token(api_client, operator, leonardo):
    _, key = token_create(user=operator, name="sacct push")
    api_client.credentials(HTTP_AUTHORIZATION=f"Token {key}")
    text = sacct_text(sacct_line("1"), sacct_line("1.batch"), sacct_line("2", account="nobody"))
    response = post_text(api_client, text, cluster="leonardo")
    assert response.status_code == 202, response.content
    assert response.json()["status"] == "queued" and response["Location"] == response.json()["url"]
    worker_runs(response)
    body = api_client.get(response["Location"]).json()
    assert body["summary"] == (
        "imported=1 updated=0 unchanged=0 steps_skipped=1 "
        "unmatched=1 rejected=0 outside_window=0 no_gpu_field=0"
    )
    assert body["source"] == "api" and body["status"] == "done"
    run = UsageImport.objects.get()
    assert run.started_by == operator
    again = pushed(api_client, text, cluster="leonardo")
    assert again["unchanged"] == 1 and again["imported"] == 0


def test_multipart_upload_with_fields_and_format(api_client, operator, reference_data):
    make_cluster()
    api_client.force_authenticate(operator)
    upload = SimpleUploadedFile(
        "fox.txt", sample("sonar-fox-sacct.txt").read_bytes(), content_type="text/plain"
    )
    response = api_client.post(
        URL,
        {"file": upload, "cluster": "fox", "fields": FOX_FIELDS, "timezone": "Europe/Oslo"},
        format="multipart",
    )
    worker_runs(response)
    body = api_client.get(response["Location"]).json()
    assert body["steps_skipped"] == 67
    assert body["filename"] == "fox.txt"
    assert UsageRecord.objects.count() == 29


def test_pbs_over_the_api(api_client, operator, reference_data):
    make_cluster()
    api_client.force_authenticate(operator)
    text = sample("xdmod-pbs-accounting-logs.log").read_text()
    assert pushed(api_client, text, cluster="fox", format="pbs")["unmatched"] == 9


def test_rejected_lines_come_back_with_their_numbers(api_client, operator, leonardo):
    api_client.force_authenticate(operator)
    body = pushed(api_client, sacct_text(sacct_line("1"), "a|b"), cluster="leonardo")
    assert body["rejected_lines"][0]["line"] == 3


def test_unreadable_input_is_a_400_and_writes_nothing(api_client, operator, leonardo):
    api_client.force_authenticate(operator)
    response = post_text(api_client, "JobID|State\n1|COMPLETED\n", cluster="leonardo")
    assert response.status_code == 400
    assert "lacks required sacct fields" in response.json()["detail"]
    assert not UsageImport.objects.exists()


def test_unknown_cluster_and_format_are_400(api_client, operator, leonardo):
    api_client.force_authenticate(operator)
    assert post_text(api_client, "x", cluster="atlantis").status_code == 400
    response = post_text(api_client, "x", cluster="leonardo", format="lsf")
    assert response.status_code == 400 and "format" in response.json()["errors"]


def test_applicant_cannot_post_imports(api_client, applicant, leonardo):
    api_client.force_authenticate(applicant)
    response = post_text(api_client, sacct_text(sacct_line("1")), cluster="leonardo")
    assert response.status_code == 403
    assert not UsageRecord.objects.exists()


def test_anonymous_cannot_post_imports(api_client, leonardo):
    response = post_text(api_client, sacct_text(sacct_line("1")), cluster="leonardo")
    assert response.status_code in (401, 403)


def test_call_manager_without_add_permission_is_refused(api_client, call_manager, leonardo):
    api_client.force_authenticate(call_manager)
    assert post_text(api_client, sacct_text(sacct_line("1")), cluster="leonardo").status_code == 403


def test_import_runs_are_browsable_in_the_admin(client, operator, leonardo):
    from django.test import Client

    api = Client()
    api.force_login(operator)
    pushed(api, sacct_text(sacct_line("1"), "bad|line"), cluster="leonardo")
    run = UsageImport.objects.get()
    client.force_login(operator)
    listing = client.get("/admin/usage/usageimport/")
    assert listing.status_code == 200 and "leonardo" in listing.content.decode()
    detail = client.get(f"/admin/usage/usageimport/{run.pk}/change/").content.decode()
    assert "imported=1" in detail and "bad|line" in detail


# --- site tokens ------------------------------------------------------------------------------


def _site_token(cluster_name: str, name: str = "sacct pusher") -> str:
    from systems.models import Cluster
    from usage.models import SiteToken

    token = SiteToken(cluster=Cluster.objects.get(name=cluster_name), name=name)
    key = token.key_issue()
    token.save()
    return key


def test_operator_makes_a_site_token_in_the_admin_and_sees_its_key_once(client, operator, leonardo):
    from systems.models import Cluster
    from usage.models import SiteToken

    client.force_login(operator)
    cluster = Cluster.objects.get(name="leonardo")
    response = client.post(
        "/admin/usage/sitetoken/add/",
        {"cluster": cluster.pk, "name": "accounting host"},
        follow=True,
    )
    page = response.content.decode()
    token = SiteToken.objects.get()
    assert token.created_by == operator and token.key_start.startswith("hgs_")
    key = page.split("<code>", 1)[1].split("</code>", 1)[0]
    assert key.startswith(token.key_start) and len(key) > 40
    assert key not in str(SiteToken.objects.values().get())  # only its digest is stored
    listing = client.get("/admin/usage/sitetoken/").content.decode()
    assert "accounting host" in listing and key not in listing
    detail = client.get(f"/admin/usage/sitetoken/{token.pk}/change/").content.decode()
    assert key not in detail


def test_a_site_token_imports_for_its_cluster_without_naming_it(api_client, leonardo):
    from usage.models import SiteToken

    api_client.credentials(HTTP_AUTHORIZATION=f"SiteToken {_site_token('leonardo')}")
    body = pushed(api_client, sacct_text(sacct_line("1")))
    assert body["cluster"] == "leonardo" and body["imported"] == 1
    run = UsageImport.objects.get()
    assert run.site_token == SiteToken.objects.get() and run.started_by is None
    assert SiteToken.objects.get().last_used_at is not None


def test_a_site_token_cannot_import_for_another_cluster(api_client, leonardo):
    api_client.credentials(HTTP_AUTHORIZATION=f"SiteToken {_site_token('leonardo')}")
    response = post_text(api_client, sacct_text(sacct_line("1")), cluster="lumi")
    assert response.status_code == 403
    assert "leonardo only" in response.json()["detail"]
    assert not UsageImport.objects.exists()


def test_a_revoked_or_unknown_site_token_is_refused(api_client, client, operator, leonardo):
    from usage.models import SiteToken

    key = _site_token("leonardo")
    client.force_login(operator)
    token = SiteToken.objects.get()
    client.post(
        "/admin/usage/sitetoken/",
        {"action": "revoke", "_selected_action": [token.pk]},
    )
    assert SiteToken.objects.get().revoked_at is not None
    for header in (f"SiteToken {key}", "SiteToken hgs_made-up", "SiteToken two parts"):
        api_client.credentials(HTTP_AUTHORIZATION=header)
        response = post_text(api_client, sacct_text(sacct_line("1")))
        assert response.status_code == 401, header
    assert not UsageRecord.objects.exists()


def test_a_site_token_opens_no_other_endpoint(api_client, leonardo):
    api_client.credentials(HTTP_AUTHORIZATION=f"SiteToken {_site_token('leonardo')}")
    assert api_client.get("/api/v1/allocations/").status_code in (401, 403)
    assert api_client.get("/api/v1/applications/").status_code in (401, 403)


def test_site_tokens_are_for_operators_only(client, call_manager, applicant):
    for user in (call_manager, applicant):
        client.force_login(user)
        assert client.get("/admin/usage/sitetoken/add/").status_code in (302, 403)


def test_operators_make_list_and_revoke_site_tokens_from_the_command_line(api_client, leonardo):
    from io import StringIO

    from django.core.management import CommandError, call_command

    from usage.models import SiteToken

    out = StringIO()
    call_command(
        "site_token",
        "--create",
        "sacct host",
        "--cluster",
        "leonardo",
        stdout=out,
        stderr=StringIO(),
    )
    key = out.getvalue().strip()
    api_client.credentials(HTTP_AUTHORIZATION=f"SiteToken {key}")
    assert post_text(api_client, sacct_text(sacct_line("1"))).status_code == 202
    listing = StringIO()
    call_command("site_token", "--list", stdout=listing)
    token = SiteToken.objects.get()
    assert token.key_start in listing.getvalue() and "active" in listing.getvalue()
    assert key not in listing.getvalue()
    call_command("site_token", "--revoke", key, stdout=StringIO())
    assert post_text(api_client, sacct_text(sacct_line("2"))).status_code == 401
    with pytest.raises(CommandError, match="Unknown cluster 'atlantis'"):
        call_command("site_token", "--create", "x", "--cluster", "atlantis")
    with pytest.raises(CommandError, match="No single active token"):
        call_command("site_token", "--revoke", token.key_start)  # already revoked


# --- queued imports ---------------------------------------------------------------------------


def test_a_push_is_stored_and_queued_not_imported_in_the_request(
    api_client, operator, leonardo, uploads, django_capture_on_commit_callbacks
):
    api_client.force_authenticate(operator)
    with django_capture_on_commit_callbacks() as queued:
        response = post_text(api_client, sacct_text(sacct_line("1")), cluster="leonardo")

    assert response.status_code == 202
    run = UsageImport.objects.get()
    assert (run.status, run.imported) == ("queued", 0) and not UsageRecord.objects.exists()
    assert (uploads / run.upload).read_text().startswith("JobID|")
    assert len(queued) == 1  # the task is sent once the run is committed

    queued[0]()  # the worker (eager in tests) takes the message

    run.refresh_from_db()
    assert (run.status, run.imported, run.upload) == ("done", 1, "")
    assert not any(uploads.iterdir())  # the upload is deleted once imported


def test_delimiter_and_time_format_are_given_with_the_push(api_client, operator, leonardo):
    api_client.force_authenticate(operator)
    line = sacct_line("1", submit="2026/01/05-08:00:00", start="2026/01/05-09:00:00",
                      end="2026/01/05-11:00:00")  # fmt: skip
    text = sacct_text(line).replace("|", ";")
    body = pushed(api_client, text, cluster="leonardo", delimiter=";",
                  time_format="%Y/%m/%d-%H:%M:%S")  # fmt: skip
    assert (body["imported"], body["rejected"]) == (1, 0)
    assert UsageRecord.objects.get().gpu_seconds == 4 * 7200


@pytest.mark.parametrize(
    ("params", "says"),
    [
        ({"timezone": "Mars/Olympus"}, "not a known IANA time zone"),
        ({"time_format": "relative"}, "SLURM_TIME_FORMAT=relative"),
        ({"time_format": "%H:%M"}, "does not carry a full date and time"),
        ({"fields": "JobID,State"}, "lacks required sacct fields"),
        ({"delimiter": ""}, "is empty"),
        ({"format": "pbs", "delimiter": ";"}, "apply to sacct input only"),
    ],
)
def test_input_that_cannot_be_read_is_a_400_and_keeps_nothing(
    api_client, operator, leonardo, uploads, params, says
):
    api_client.force_authenticate(operator)
    response = post_text(api_client, sacct_text(sacct_line("1")), cluster="leonardo", **params)
    assert response.status_code == 400, response.content
    assert says in str(response.json())
    assert not UsageImport.objects.exists()
    assert not uploads.exists() or not any(uploads.iterdir())


def test_bad_lines_and_bytes_are_rejected_per_line_never_a_500(api_client, operator, leonardo):
    api_client.force_authenticate(operator)
    good = sacct_line("1").encode()
    body = b"\n".join([
        sacct_text(sacct_line("2")).encode().rstrip(b"\n"),
        good.replace(b"|1|acme", b"|1\x00|acme"),  # a NUL byte
        good.replace(b"|7200|", b"|99999999999999999999999|"),  # past 64 bits
        good.replace(b"train", b"caf\xe9"),  # Latin-1, not UTF-8
        b"x" * 2_000_000,  # a line over the limit
        good.replace(b"|1|1|", b"|3|3|").replace(b"gres/gpu=4", b"gres/gpu=99999"),
    ]) + b"\n"  # fmt: skip
    response = api_client.post(f"{URL}?cluster=leonardo", data=body, content_type="text/plain")
    worker_runs(response)
    run = api_client.get(response["Location"]).json()
    assert (run["status"], run["imported"], run["rejected"]) == ("done", 2, 4)
    assert [entry["line"] for entry in run["rejected_lines"]] == [3, 4, 6, 7]
    assert UsageRecord.objects.get(job_id="1").job_name == "caf\ufffd"


def test_a_multipart_push_without_a_file_is_a_400(api_client, operator, leonardo):
    api_client.force_authenticate(operator)
    response = api_client.post(URL, {"cluster": "leonardo"}, format="multipart")
    assert response.status_code == 400 and "file" in response.json()["errors"]


def test_a_site_token_reads_its_own_clusters_runs_only(api_client, operator, leonardo):
    from systems.models import Cluster

    api_client.force_authenticate(operator)
    response = post_text(api_client, sacct_text(sacct_line("1")), cluster="leonardo")
    lumi_run = UsageImport.objects.create(cluster=Cluster.objects.get(name="lumi"), source="api")
    api_client.force_authenticate(None)
    api_client.credentials(HTTP_AUTHORIZATION=f"SiteToken {_site_token('leonardo')}")

    assert api_client.get(response["Location"]).status_code == 200
    assert api_client.get(f"{URL}{lumi_run.pk}/").status_code == 404


def test_an_applicant_or_anonymous_cannot_read_runs(api_client, applicant, operator, leonardo):
    api_client.force_authenticate(operator)
    location = post_text(api_client, sacct_text(sacct_line("1")), cluster="leonardo")["Location"]
    api_client.force_authenticate(applicant)
    assert api_client.get(location).status_code == 403
    api_client.force_authenticate(None)
    assert api_client.get(location).status_code in (401, 403)


def test_a_queued_run_whose_message_was_lost_is_queued_again_by_the_periodic_task(
    api_client, operator, leonardo
):
    from datetime import timedelta

    from django.utils import timezone

    from usage.tasks import usage_spool_import

    api_client.force_authenticate(operator)
    # the web process was killed after committing the run, before its message went out (in a
    # test's transaction the message is never sent, just so)
    response = post_text(api_client, sacct_text(sacct_line("1")), cluster="leonardo")
    assert usage_spool_import.delay().get() == "files=0"  # queued a moment ago: left alone
    UsageImport.objects.update(started_at=timezone.now() - timedelta(minutes=10))

    assert usage_spool_import.delay().get() == "files=0 requeued=1"

    assert api_client.get(response["Location"]).json()["status"] == "done"
    assert UsageRecord.objects.count() == 1


def test_an_upload_interrupted_by_a_killed_worker_is_imported_again_exactly_once(
    api_client, operator, leonardo
):
    from usage.tasks import usage_spool_import

    api_client.force_authenticate(operator)
    text = sacct_text(sacct_line("1"), sacct_line("2"), sacct_line("3"))
    response = post_text(api_client, text, cluster="leonardo")
    run = UsageImport.objects.get()
    # a worker took it, wrote one batch and was killed: its run is left running
    usage_import(cluster=run.cluster, lines=text.split("\n")[:2], source="api", run=run)
    UsageImport.objects.filter(pk=run.pk).update(
        status="running", upload=run.upload, host="worker-7", pid=4242, heartbeat_at=None,
        started_at=run.started_at.replace(year=2020),
    )  # fmt: skip

    assert usage_spool_import.delay().get() == "files=0 requeued=1"

    body = api_client.get(response["Location"]).json()
    assert (body["status"], body["imported"], body["unchanged"]) == ("done", 2, 1)
    assert UsageRecord.objects.count() == 3


def test_an_upload_interrupted_again_and_again_is_given_up(api_client, operator, leonardo):
    api_client.force_authenticate(operator)
    post_text(api_client, sacct_text(sacct_line("1")), cluster="leonardo")
    UsageImport.objects.update(status="interrupted", attempts=MAX_ATTEMPTS)
    run = UsageImport.objects.get()

    assert usage_upload_import(run.pk) == (
        f"failed: given up after {MAX_ATTEMPTS} imports that did not finish"
    )

    run.refresh_from_db()
    assert run.status == "failed" and run.upload == ""


def test_an_upload_no_run_names_is_deleted_after_a_day(uploads, reference_data):
    import os
    import time

    from usage.uploads import usage_uploads_forget_orphans

    uploads.mkdir(parents=True)
    orphan, fresh = uploads / "a1b2", uploads / ".c3d4.part"  # a web process died with them
    for path in (orphan, fresh):
        path.write_text("JobID|...\n")
    os.utime(orphan, (time.time() - 2 * 86400,) * 2)

    assert usage_uploads_forget_orphans() == 1
    assert not orphan.exists() and fresh.exists()
