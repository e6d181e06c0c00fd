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
