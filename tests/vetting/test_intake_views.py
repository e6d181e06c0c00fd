import re

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse

from demo.builders import pdf_upload
from systems.models import Partition
from tests.conftest import client_for
from tests.factories import make_application, make_organisation
from vetting.models import Application
from vetting.services import intake as services


@pytest.fixture
def application(applicant, open_call):
    return make_application(applicant=applicant, call=open_call)


def _pages(application):
    pk = application.pk
    return [
        reverse("vetting:detail", args=[pk]),
        reverse("vetting:edit", args=[pk]),
        reverse("vetting:withdraw", args=[pk]),
        reverse("vetting:annex", args=[pk]),
    ]


def test_anonymous_visitors_are_sent_to_log_in(client, application):
    for url in [reverse("vetting:apply"), reverse("vetting:list"), *_pages(application)]:
        response = client.get(url)
        assert response.status_code == 302, url
        assert response["Location"].startswith(reverse("account_login")), url


def test_members_open_every_page_of_their_application(client, applicant, application):
    client_for(client, applicant)
    for url in _pages(application):
        assert client.get(url).status_code == 200, url


@pytest.mark.parametrize("who", ["other_applicant", "outsider", "reviewer"])
def test_people_outside_the_organisation_get_not_found(client, application, who, request):
    person = request.getfixturevalue(who)
    if who == "other_applicant":
        make_organisation(owner=person, legal_name="Lince Labs SL", country="ES")
    client_for(client, person)
    for url in _pages(application):
        assert client.get(url).status_code == 404, url
    assert client.post(reverse("vetting:withdraw", args=[application.pk])).status_code == 404
    assert (
        client.post(reverse("vetting:edit", args=[application.pk]), {"title": "x"}).status_code
        == 404
    )
    application.refresh_from_db()
    assert application.state == "draft"
    assert application.title != "x"


def test_application_list_shows_only_the_own_organisations(client, application, other_applicant):
    client_for(client, other_applicant)
    page = client.get(reverse("vetting:list")).content.decode()
    assert application.title not in page


def test_a_second_member_of_the_organisation_sees_the_application(client, application, outsider):
    from organisations.models import Membership

    Membership.objects.create(organisation=application.organisation, user=outsider)
    assert client_for(client, outsider).get(_pages(application)[0]).status_code == 200


def test_call_manager_downloads_the_annex_but_a_reviewer_cannot(client, application, call_manager):
    response = client_for(client, call_manager).get(reverse("vetting:annex", args=[application.pk]))
    assert response.status_code == 200
    assert b"".join(response.streaming_content).startswith(b"%PDF-")


def test_annex_is_served_as_a_pdf_attachment(client, applicant, application):
    response = client_for(client, applicant).get(reverse("vetting:annex", args=[application.pk]))
    assert response["Content-Type"] == "application/pdf"
    assert response["Content-Disposition"].startswith("attachment")


def test_media_url_does_not_serve_annexes(client, applicant, application):
    response = client_for(client, applicant).get("/media/" + application.technical_annex.name)
    assert response.status_code == 404


def test_apply_without_an_organisation_leads_to_registering_one(client, applicant, open_call):
    response = client_for(client, applicant).get(reverse("vetting:apply"))
    assert response.status_code == 302
    assert response["Location"].startswith(reverse("organisations:create"))


def test_apply_starts_a_draft_and_opens_the_form(client, applicant, open_call):
    organisation = make_organisation(owner=applicant)
    mode = open_call.access_modes.get(kind="fast_lane")
    client_for(client, applicant)
    page = client.get(reverse("vetting:apply")).content.decode()
    assert "Fast Lane" in page
    response = client.post(
        reverse("vetting:apply"), {"organisation": organisation.pk, "access_mode": mode.pk}
    )
    application = Application.objects.get()
    assert response["Location"] == reverse("vetting:edit", args=[application.pk])
    assert (application.organisation, application.access_mode, application.state) == (
        organisation,
        mode,
        "draft",
    )


def test_apply_refuses_another_organisation(client, applicant, other_applicant, open_call):
    theirs = make_organisation(owner=other_applicant, legal_name="Lince Labs SL")
    make_organisation(owner=applicant)
    mode = open_call.access_modes.first()
    client_for(client, applicant).post(
        reverse("vetting:apply"), {"organisation": theirs.pk, "access_mode": mode.pk}
    )
    assert not Application.objects.exists()


def _form_data(application, **overrides):
    leonardo = Partition.objects.get(cluster__name="leonardo")
    data = {
        "access_mode": application.access_mode_id,
        "title": "Legal LLM",
        "abstract": "Text",
        "domain": "language",
        "civilian_use_confirmed": "on",
        "results_openness": "open",
        "weights_openness": "open",
        "eu_market": "yes",
        "model_name": "aurora-legal-7b",
        "modality": "text",
        "training_kind": "from_scratch",
        "parameters": "7 billion",
        "training_tokens": "2e11",
        f"resources_{leonardo.pk}": "20,000",
        "start_date": application.start_date.isoformat(),
        "duration_months": "3",
        "expected_utilisation": "40 %",
        "pi_name": "Aino",
        "pi_email": "aino@example.com",
        "pi_contract_end": application.pi_contract_end.isoformat(),
        "team_size": "6",
        "hpc_experience": "Some",
        "commitments": ["code_of_practice"],
    }
    for key in application.ethics:
        data[f"ethics_{key}_answer"] = "yes" if key == "civilian_purpose" else "no"
    data.update(overrides)
    return {k: v for k, v in data.items() if v is not None}


def test_saving_a_draft_reads_numbers_as_people_write_them(client, applicant, application):
    client_for(client, applicant)
    response = client.post(reverse("vetting:edit", args=[application.pk]), _form_data(application))
    assert response.status_code == 302
    application.refresh_from_db()
    assert application.parameters == 7_000_000_000
    assert application.training_tokens == 200_000_000_000
    assert application.expected_utilisation == pytest.approx(0.4)
    assert application.resources.get().gpu_hours == 20_000
    assert application.eu_market is True


def test_unreadable_input_is_kept_and_marked_next_to_its_field(client, applicant, application):
    client_for(client, applicant)
    url = reverse("vetting:edit", args=[application.pk])
    response = client.post(url, _form_data(application, parameters="seven bilion", title="Kept"))
    page = response.content.decode()
    assert response.status_code == 200
    assert 'value="seven bilion"' in page
    assert re.search(r'id="id_parameters_error"', page)
    assert 'aria-describedby="id_parameters_helptext id_parameters_error"' in page
    application.refresh_from_db()
    assert application.title == "Kept"
    # Coming back later, the typed text is still there.
    assert 'value="seven bilion"' in client.get(url).content.decode()


def test_failed_submit_keeps_everything_and_explains_each_problem(client, applicant, application):
    client_for(client, applicant)
    url = reverse("vetting:edit", args=[application.pk])
    data = _form_data(
        application, title="", civilian_use_confirmed=None, ethics_personal_data_answer="yes"
    )
    response = client.post(url, {**data, "submit": "1"})
    page = response.content.decode()
    assert response.status_code == 200
    assert "Give the project a title." in page
    assert "civilian purposes" in page
    assert "You answered yes: explain" in page
    assert 'id="id_ethics_personal_data_explanation_error"' in page
    assert 'value="7 billion"' in page
    application.refresh_from_db()
    assert application.state == "draft"
    assert application.ethics["personal_data"]["answer"] is True


def test_total_above_the_mode_limit_is_shown_in_the_resources_section(
    client, applicant, application
):
    leonardo = Partition.objects.get(cluster__name="leonardo")
    client_for(client, applicant)
    data = _form_data(application, **{f"resources_{leonardo.pk}": "60000"})
    page = client.post(reverse("vetting:edit", args=[application.pk]), {**data, "submit": "1"})
    text = page.content.decode()
    assert "Fast Lane allows up to 50,000 GPU-hours in total; you asked for 60,000" in text
    assert 'id="resources-error"' in text


def test_submit_from_the_form_then_the_page_is_read_only(client, applicant, application):
    client_for(client, applicant)
    url = reverse("vetting:edit", args=[application.pk])
    response = client.post(url, {**_form_data(application), "submit": "1"})
    assert response["Location"] == reverse("vetting:detail", args=[application.pk])
    application.refresh_from_db()
    assert application.state == "submitted"
    assert client.get(url)["Location"] == reverse("vetting:detail", args=[application.pk])
    detail = client.get(reverse("vetting:detail", args=[application.pk])).content.decode()
    assert "Submitted" in detail
    assert "Application submitted." in detail
    assert applicant.username not in detail.split("History")[1].split("</section>")[0]


def test_form_shows_the_estimate_of_the_saved_draft(client, applicant, application):
    page = client_for(client, applicant).get(reverse("vetting:edit", args=[application.pk]))
    text = page.content.decode()
    # 20,000 A100-hours at 312 TFLOP/s and 0.4: 9.0e21 FLOP
    assert "9.0 × 10²¹" in text
    assert "below the GPAI indication" in text
    assert "below_gpai" not in text


def test_form_uploads_a_valid_annex_and_refuses_a_renamed_image(client, applicant, open_call):
    application = make_application(applicant=applicant, call=open_call, complete=False)
    client_for(client, applicant)
    url = reverse("vetting:edit", args=[application.pk])
    from django.core.files.uploadedfile import SimpleUploadedFile

    fake = SimpleUploadedFile("annex.pdf", b"\x89PNG\r\n\x1a\n" + b"0" * 100, "application/pdf")
    page = client.post(url, {"access_mode": application.access_mode_id, "technical_annex": fake})
    assert "This file is not a PDF" in page.content.decode()
    client.post(url, {"access_mode": application.access_mode_id, "technical_annex": pdf_upload()})
    application.refresh_from_db()
    assert application.technical_annex


def test_every_section_is_a_fieldset_with_a_legend(client, applicant, application):
    page = client_for(client, applicant).get(reverse("vetting:edit", args=[application.pk]))
    text = page.content.decode()
    for legend in ("Project", "Model plan", "Resources", "Team", "Ethics", "AI Act", "annex"):
        assert re.search(rf"<legend>\d\. [^<]*{legend}", text, re.I), legend
    # Every input has a label.
    ids = set(re.findall(r'<(?:input|select|textarea)[^>]*\sid="([^"]+)"', text))
    labelled = set(re.findall(r'<label[^>]*for="([^"]+)"', text))
    assert ids - labelled == set()


def test_withdraw_from_the_page(client, applicant, application):
    services.application_submit(application=application, actor=applicant)
    client_for(client, applicant)
    response = client.post(reverse("vetting:withdraw", args=[application.pk]), {"reason": "Pivot"})
    assert response.status_code == 302
    application.refresh_from_db()
    assert application.state == "withdrawn"
    page = client.get(reverse("vetting:detail", args=[application.pk])).content.decode()
    assert "Withdrawn by the applicant. Reason: Pivot" in page


def test_page_queries_do_not_grow_with_resources(
    client, applicant, application, django_assert_max_num_queries
):
    client_for(client, applicant)
    with django_assert_max_num_queries(40):
        client.get(reverse("vetting:edit", args=[application.pk]))


def test_saving_a_draft_takes_as_many_queries_for_every_partition_as_for_one(
    client, applicant, application
):
    client_for(client, applicant)
    url = reverse("vetting:edit", args=[application.pk])
    offered = Partition.objects.filter(accessmodepartition__access_mode=application.access_mode)
    assert offered.count() > 2

    def save(data) -> int:
        with CaptureQueriesContext(connection) as captured:
            response = client.post(url, data)
        assert response.status_code == 302
        return len(captured)

    save(_form_data(application))
    one = save(_form_data(application))
    every = save(_form_data(application, **{f"resources_{p.pk}": "1,000" for p in offered}))
    assert application.resources.count() == offered.count()
    back_to_one = save(_form_data(application))
    assert list(application.resources.values_list("gpu_hours", flat=True)) == [20_000]
    assert one == every == back_to_one


def test_an_approved_application_links_to_its_allocations(client, applicant, open_call):
    from tests.factories import make_user
    from vetting.services import review as workflow

    manager = make_user(role="call manager")
    application = make_application(
        applicant=applicant, call=open_call, state="reviewed", manager=manager
    )
    leonardo = Partition.objects.get(cluster__name="leonardo")
    decision = workflow.application_approve(
        application=application, actor=manager, reason="Strong.", grants={leonardo.pk: 15_000}
    )
    (allocation,) = decision.allocations.all()
    page = client_for(client, applicant).get(reverse("vetting:detail", args=[application.pk]))
    text = page.content.decode()
    assert 'id="granted-allocations"' in text
    assert reverse("allocations:detail", args=[allocation.pk]) in text
    assert "15,000 GPU-hours" in text and allocation.account in text


def test_members_who_are_not_owners_cannot_withdraw_from_the_page(
    client, applicant, application, outsider
):
    from organisations.models import Membership

    Membership.objects.create(
        organisation=application.organisation, user=outsider, role=Membership.Role.MEMBER
    )
    client_for(client, outsider)
    response = client.post(reverse("vetting:withdraw", args=[application.pk]), {"reason": "x"})
    assert response.status_code == 403
    application.refresh_from_db()
    assert application.state == "draft"


def _drafts(applicant, organisation, call, count: int, start: int = 0) -> None:
    for number in range(start, start + count):
        make_application(
            applicant=applicant, call=call, organisation=organisation, title=f"Draft {number}"
        )


def test_application_list_takes_the_same_queries_for_3_and_30_applications(
    client, applicant, open_call
):
    organisation = make_organisation(owner=applicant)
    _drafts(applicant, organisation, open_call, 3)
    client_for(client, applicant)
    client.get(reverse("vetting:list"))
    with CaptureQueriesContext(connection) as few:
        client.get(reverse("vetting:list"))
    _drafts(applicant, organisation, open_call, 27, start=3)
    with CaptureQueriesContext(connection) as many:
        page = client.get(reverse("vetting:list")).content.decode()
    assert len(many) == len(few)
    assert 'href="?page=2" rel="next"' in page


def test_application_list_is_paginated_newest_first(client, applicant, open_call, monkeypatch):
    from vetting.views import intake

    monkeypatch.setattr(intake, "APPLICATIONS_PER_PAGE", 2)
    _drafts(applicant, make_organisation(owner=applicant), open_call, 3)
    client_for(client, applicant)

    first = client.get(reverse("vetting:list")).content.decode()
    second = client.get(reverse("vetting:list") + "?page=2").content.decode()

    assert "Draft 2" in first and "Draft 1" in first and "Draft 0" not in first
    assert 'href="?page=2" rel="next"' in first and "Page 1 of 2" in first
    assert "Draft 0" in second and 'href="?page=1" rel="prev"' in second
