import io

import pytest
from django.urls import reverse

from demo.builders import complete_fields, pdf_upload
from systems.models import Partition
from tests.factories import make_application, make_organisation
from vetting.models import Application


@pytest.fixture
def application(applicant, open_call):
    return make_application(applicant=applicant, call=open_call)


def url(application=None, action=None):
    if application is None:
        return "/api/v1/applications/"
    return f"/api/v1/applications/{application.pk}/" + (f"{action}/" if action else "")


def as_json(fields: dict) -> dict:
    return {
        key: value.isoformat() if hasattr(value, "isoformat") else value
        for key, value in fields.items()
    }


def test_anonymous_callers_are_refused(api_client, application):
    for path in [url(), url(application)]:
        assert api_client.get(path).status_code in (401, 403)
    assert api_client.post(url(application, "submit")).status_code in (401, 403)


@pytest.mark.parametrize("who", ["other_applicant", "outsider"])
def test_other_people_get_not_found(api_client, application, who, request):
    api_client.force_authenticate(request.getfixturevalue(who))
    assert api_client.get(url(application)).status_code == 404
    assert api_client.patch(url(application), {"title": "x"}, format="json").status_code == 404
    assert api_client.post(url(application, "submit")).status_code == 404
    assert api_client.post(url(application, "withdraw")).status_code == 404
    assert api_client.get(url()).json()["results"] == []


def test_member_reads_the_application_with_estimate_and_history(api_client, applicant, application):
    api_client.force_authenticate(applicant)
    data = api_client.get(url(application)).json()
    assert data["state"] == "draft"
    assert data["resources"][0]["cluster"] == "leonardo"
    assert data["estimate"]["classification"] == "below_gpai"
    assert data["history"][0]["to_state"] == "draft"
    assert "actor" not in data["history"][0]
    assert data["technical_annex"].endswith(f"/applications/{application.pk}/annex/")


def test_create_update_and_submit_a_draft(api_client, applicant, open_call):
    organisation = make_organisation(owner=applicant)
    mode = open_call.access_modes.get(kind="fast_lane")
    leonardo = Partition.objects.get(cluster__name="leonardo")
    api_client.force_authenticate(applicant)
    response = api_client.post(
        url(),
        {"organisation": organisation.pk, "access_mode": mode.pk, "title": "API draft"},
        format="json",
    )
    assert response.status_code == 201, response.json()
    application = Application.objects.get(pk=response.json()["id"])
    assert application.title == "API draft"

    fields = as_json(complete_fields())
    fields["resources"] = [{"partition": leonardo.pk, "gpu_hours": 10_000}]
    response = api_client.patch(url(application), fields, format="json")
    assert response.status_code == 200, response.json()

    response = api_client.patch(
        url(application), {"technical_annex": pdf_upload()}, format="multipart"
    )
    assert response.status_code == 200, response.json()

    response = api_client.post(url(application, "submit"))
    assert response.status_code == 200, response.json()
    body = response.json()
    assert body["state"] == "submitted"
    assert body["estimate"]["policy_version"] == 1
    assert body["estimate"]["total"]["gpu_hours"] == 10_000


def test_submit_returns_the_same_messages_as_the_form(api_client, applicant, open_call):
    from vetting.rules import REQUIRED_TEXT

    application = make_application(applicant=applicant, call=open_call, complete=False)
    api_client.force_authenticate(applicant)
    response = api_client.post(url(application, "submit"))
    assert response.status_code == 400
    errors = response.json()["errors"]
    assert errors["title"] == [REQUIRED_TEXT["title"]]
    assert errors["ethics.personal_data.answer"] == ["Answer yes or no."]
    assert "technical_annex" in errors
    application.refresh_from_db()
    assert application.state == "draft"


def test_a_submitted_application_cannot_be_changed_or_submitted_again(
    api_client, applicant, application
):
    api_client.force_authenticate(applicant)
    assert api_client.post(url(application, "submit")).status_code == 200
    response = api_client.patch(url(application), {"title": "Changed"}, format="json")
    assert response.status_code == 409
    assert "cannot be changed" in response.json()["detail"]
    assert api_client.post(url(application, "submit")).status_code == 409


def test_withdraw(api_client, applicant, application):
    api_client.force_authenticate(applicant)
    response = api_client.post(url(application, "withdraw"), {"reason": "Pivot"}, format="json")
    assert response.json()["state"] == "withdrawn"
    assert api_client.post(url(application, "withdraw")).status_code == 409


def test_a_body_that_is_no_form_withdraws_nothing(api_client, applicant, application):
    api_client.force_authenticate(applicant)
    response = api_client.post(
        url(application, "withdraw"),
        data=b"-2.4329131979343088e+153",
        content_type="multipart/form-data; boundary=5724ee9502daeb6c0ae758aff2310646",
    )
    assert response.status_code == 400
    assert "boundary '5724ee9502daeb6c0ae758aff2310646'" in response.json()["detail"]
    application.refresh_from_db()
    assert application.state == Application.State.DRAFT
    # a real form still does
    response = api_client.post(
        url(application, "withdraw"), {"reason": "Pivot"}, format="multipart"
    )
    assert response.status_code == 200 and response.json()["state"] == "withdrawn"


def test_a_boundary_split_between_two_reads_is_found():
    from core.parsers import _BoundaryWatch

    watch = _BoundaryWatch(io.BytesIO(b"xx--5724ee95yy"), b"--5724ee95")
    while watch.read(3):
        pass
    assert watch.seen and watch.read_any
    missing = _BoundaryWatch(io.BytesIO(b"-2.4e+153"), b"--5724ee95")
    while missing.read(3):
        pass
    assert not missing.seen


def test_unknown_ethics_question_and_foreign_partition_are_refused(
    api_client, applicant, application, open_call
):
    api_client.force_authenticate(applicant)
    response = api_client.patch(
        url(application), {"ethics": {"astrology": {"answer": True}}}, format="json"
    )
    assert response.status_code == 400
    playground = open_call.access_modes.get(kind="playground")
    playground.accessmodepartition_set.exclude(partition__cluster__name="lumi").delete()
    vega = Partition.objects.get(cluster__name="vega")
    response = api_client.patch(
        url(application),
        {"access_mode": playground.pk, "resources": [{"partition": vega.pk, "gpu_hours": 5}]},
        format="json",
    )
    assert response.status_code == 400
    assert f"resources.{vega.pk}" in response.json()["errors"]


def test_a_fake_pdf_is_refused_through_the_api(api_client, applicant, application):
    from django.core.files.uploadedfile import SimpleUploadedFile

    api_client.force_authenticate(applicant)
    fake = SimpleUploadedFile("annex.pdf", b"GIF89a not a pdf", "application/pdf")
    response = api_client.patch(url(application), {"technical_annex": fake}, format="multipart")
    assert response.status_code == 400
    assert "not a PDF" in response.json()["errors"]["technical_annex"][0]


def test_cannot_create_for_another_organisation(api_client, applicant, other_applicant, open_call):
    theirs = make_organisation(owner=other_applicant, legal_name="Lince Labs SL")
    api_client.force_authenticate(applicant)
    response = api_client.post(
        url(),
        {"organisation": theirs.pk, "access_mode": open_call.access_modes.first().pk},
        format="json",
    )
    assert response.status_code == 400
    assert not Application.objects.exists()


def test_list_query_count_does_not_grow(
    api_client, applicant, open_call, django_assert_max_num_queries
):
    organisation = make_organisation(owner=applicant)
    for _ in range(3):
        make_application(applicant=applicant, call=open_call, organisation=organisation)
    api_client.force_authenticate(applicant)
    with django_assert_max_num_queries(30) as captured:
        api_client.get(url())
    few = len(captured.captured_queries)
    for _ in range(3):
        make_application(applicant=applicant, call=open_call, organisation=organisation)
    with django_assert_max_num_queries(few):
        api_client.get(url())


def test_schema_documents_the_submit_endpoint(api_client):
    response = api_client.get(reverse("api-schema"), {"format": "json"})
    paths = response.json()["paths"]
    assert "/api/v1/applications/{id}/submit/" in paths


def test_members_who_are_not_owners_cannot_withdraw(api_client, applicant, application, outsider):
    from organisations.models import Membership

    Membership.objects.create(
        organisation=application.organisation, user=outsider, role=Membership.Role.MEMBER
    )
    api_client.force_authenticate(outsider)
    assert api_client.get(url(application)).status_code == 200
    response = api_client.post(url(application, "withdraw"), {"reason": "x"}, format="json")
    assert response.status_code == 403
    application.refresh_from_db()
    assert application.state == Application.State.DRAFT


def test_organisation_and_call_filters_do_not_tell_which_ids_exist(
    api_client, applicant, application, other_applicant
):
    theirs = make_organisation(legal_name="Rival Oy", owner=other_applicant)
    api_client.force_authenticate(applicant)
    for organisation_id in (theirs.pk, 999_999):
        response = api_client.get(url(), {"organisation": organisation_id})
        assert response.status_code == 200
        assert response.json()["results"] == []
    for call_id in (application.call_id + 1000, 999_999):
        response = api_client.get(url(), {"call": call_id})
        assert (response.status_code, response.json()["results"]) == (200, [])
    mine = api_client.get(url(), {"organisation": application.organisation_id}).json()
    assert [a["id"] for a in mine["results"]] == [application.pk]
