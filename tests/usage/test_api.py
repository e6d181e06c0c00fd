"""POST /api/v1/usage/imports/: the same importer and summary over HTTP, for operators and sites."""

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile

from core.services import token_create
from tests.factories import make_allocation, make_cluster
from tests.usage.sacct import FOX_FIELDS, sacct_line, sacct_text, sample
from usage.models import UsageImport, UsageRecord

pytestmark = pytest.mark.django_db

URL = "/api/v1/usage/imports/"


@pytest.fixture
def leonardo(reference_data):
    make_allocation(cluster="leonardo", account="acme_llm")


def post_text(client, text: str, **params):
    query = "&".join(f"{key}={value}" for key, value in params.items())
    return client.post(f"{URL}?{query}", data=text.encode(), content_type="text/plain")


def test_operator_imports_a_plain_text_body_with_a_token(api_client, operator, leonardo):
    _, key = token_create(user=operator, name="sacct push")
    api_client.credentials(HTTP_AUTHORIZATION=f"Token {key}")
    text = sacct_text(sacct_line("1"), sacct_line("1.batch"), sacct_line("2", account="nobody"))
    response = post_text(api_client, text, cluster="leonardo")
    assert response.status_code == 201, response.content
    body = response.json()
    assert body["summary"] == (
        "imported=1 updated=0 unchanged=0 steps_skipped=1 unmatched=1 rejected=0"
    )
    assert body["source"] == "api" and body["status"] == "done"
    run = UsageImport.objects.get()
    assert run.started_by == operator
    again = post_text(api_client, text, cluster="leonardo").json()
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
    assert response.status_code == 201, response.content
    assert response.json()["steps_skipped"] == 67
    assert response.json()["filename"] == "fox.txt"
    assert UsageRecord.objects.count() == 29


def test_pbs_over_the_api(api_client, operator, reference_data):
    make_cluster()
    api_client.force_authenticate(operator)
    text = sample("xdmod-pbs-accounting-logs.log").read_text()
    response = post_text(api_client, text, cluster="fox", format="pbs")
    assert response.status_code == 201
    assert response.json()["unmatched"] == 9


def test_rejected_lines_come_back_with_their_numbers(api_client, operator, leonardo):
    api_client.force_authenticate(operator)
    response = post_text(api_client, sacct_text(sacct_line("1"), "a|b"), cluster="leonardo")
    assert response.json()["rejected_lines"][0]["line"] == 3


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
    post_text(api, sacct_text(sacct_line("1"), "bad|line"), cluster="leonardo")
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
    response = post_text(api_client, sacct_text(sacct_line("1")))
    assert response.status_code == 201, response.content
    assert response.json()["cluster"] == "leonardo" and response.json()["imported"] == 1
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
    assert post_text(api_client, sacct_text(sacct_line("1"))).status_code == 201
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
