from tests.conftest import client_for
from tests.factories import make_application


def test_call_manager_reads_applications_in_the_admin_but_cannot_edit(
    client, applicant, call_manager, open_call
):
    application = make_application(applicant=applicant, call=open_call)
    client_for(client, call_manager)
    listing = client.get("/admin/vetting/application/")
    assert listing.status_code == 200
    assert application.title in listing.content.decode()
    page = client.get(f"/admin/vetting/application/{application.pk}/change/")
    assert page.status_code == 200
    assert f"/applications/{application.pk}/annex/" in page.content.decode()
    assert client.get("/admin/vetting/application/add/").status_code == 403
    response = client.post(f"/admin/vetting/application/{application.pk}/change/", {"title": "x"})
    assert response.status_code == 403
    application.refresh_from_db()
    assert application.title != "x"


def test_applicants_have_no_admin_access_to_applications(client, applicant, open_call):
    make_application(applicant=applicant, call=open_call)
    response = client_for(client, applicant).get("/admin/vetting/application/")
    assert response.status_code == 302


def test_application_admin_shows_figures_and_answers_in_words_not_json(
    client, applicant, call_manager, open_call
):
    application = make_application(applicant=applicant, call=open_call, state="in_review")
    application.refresh_from_db()
    text = (
        client_for(client, call_manager)
        .get(f"/admin/vetting/application/{application.pk}/change/")
        .content.decode()
    )
    # the ethics answers, commitments and estimate snapshot are tables and lists, not JSON
    assert '{"answer"' not in text and "&quot;answer&quot;" not in text
    assert "policy_version" not in text and "flop_hardware" not in text
    assert "Does the project process personal data" in text
    assert "Sign the GPAI Code of Practice" in text
    # figures are rounded to two significant figures with a power of ten, never raw floats
    assert f"{application.estimated_flop:.1e}".split("e")[0] + " × 10" in text
    assert str(int(application.estimated_flop)) not in text
    assert "below the GPAI indication" in text and "below_gpai" not in text
    assert f"{application.parameters:,}" in text


def test_application_list_filters_by_compute_class_in_words(
    client, applicant, call_manager, open_call
):
    make_application(applicant=applicant, call=open_call, state="in_review")
    text = client_for(client, call_manager).get("/admin/vetting/application/").content.decode()
    assert "below the GPAI indication" in text
    assert ">below_gpai<" not in text
