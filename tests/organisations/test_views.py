import pytest
from allauth.account.models import EmailAddress
from django.core import mail
from django.urls import reverse

from organisations.models import Invitation, Membership, Organisation
from tests.conftest import client_for
from tests.factories import make_application, make_organisation

VALID = {
    "legal_name": "Aurora AI Oy",
    "country": "FI",
    "registration_id": "FI12345678",
    "founding_date": "2023-04-01",
    "staff_headcount": "12",
    "annual_turnover_eur": "800000",
    "balance_sheet_eur": "1200000",
    "website": "https://aurora.example",
    "controlled_by_registration_id": "",
    "beneficial_owners": "Aino Virtanen\nMikko Virtanen",
}


@pytest.fixture
def organisation(applicant):
    return make_organisation(
        owner=applicant, legal_name=VALID["legal_name"], registration_id=VALID["registration_id"]
    )


def _pages(organisation):
    return [
        reverse("organisations:detail", args=[organisation.pk]),
        reverse("organisations:edit", args=[organisation.pk]),
    ]


def test_anonymous_visitors_are_sent_to_log_in(client, organisation):
    for path in [
        reverse("organisations:list"),
        reverse("organisations:create"),
        *_pages(organisation),
    ]:
        response = client.get(path)
        assert response.status_code == 302
        assert response["Location"].startswith(reverse("account_login"))


def test_creator_becomes_owner(client, applicant, db):
    client_for(client, applicant)
    response = client.post(reverse("organisations:create"), VALID)
    organisation = Organisation.objects.get()
    assert response["Location"] == reverse("organisations:detail", args=[organisation.pk])
    assert Membership.objects.get(organisation=organisation).role == "owner"
    assert organisation.beneficial_owner_names == ["Aino Virtanen", "Mikko Virtanen"]


def test_create_returns_to_the_application_form(client, applicant, db):
    client_for(client, applicant)
    response = client.post(reverse("organisations:create") + "?next=/apply/", VALID)
    assert response["Location"] == "/apply/"
    response = client.post(reverse("organisations:create") + "?next=https://evil.example/", VALID)
    assert "evil" not in response["Location"]


def test_country_must_come_from_the_table_and_errors_sit_next_to_fields(client, applicant, db):
    client_for(client, applicant)
    page = client.post(reverse("organisations:create"), {**VALID, "country": "XX"})
    text = page.content.decode()
    assert 'id="id_country_error"' in text
    assert 'aria-invalid="true"' in text
    assert not Organisation.objects.exists()


def test_country_list_puts_eligible_countries_first(client, applicant, db):
    text = client_for(client, applicant).get(reverse("organisations:create")).content.decode()
    assert text.index("Finland") < text.index("United States")
    assert '<optgroup label="Eligible countries">' in text


def test_members_see_the_organisation_and_members_cannot_edit(client, organisation, outsider):
    Membership.objects.create(organisation=organisation, user=outsider)
    client_for(client, outsider)
    assert client.get(_pages(organisation)[0]).status_code == 200
    assert client.get(_pages(organisation)[1]).status_code == 403
    invite = reverse("organisations:invite", args=[organisation.pk])
    assert client.post(invite, {"email": "x@example.com", "role": "member"}).status_code == 403


@pytest.mark.parametrize("who", ["other_applicant", "outsider"])
def test_non_members_get_not_found(client, organisation, who, request):
    client_for(client, request.getfixturevalue(who))
    for path in _pages(organisation):
        assert client.get(path).status_code == 404
    invite = reverse("organisations:invite", args=[organisation.pk])
    assert client.post(invite, {"email": "x@example.com", "role": "member"}).status_code == 404
    assert client.post(_pages(organisation)[1], VALID).status_code == 404


def test_owner_edits_the_details(client, applicant, organisation):
    client_for(client, applicant)
    client.post(_pages(organisation)[1], {**VALID, "legal_name": "Aurora AI Oyj"})
    organisation.refresh_from_db()
    assert organisation.legal_name == "Aurora AI Oyj"
    assert organisation.history.count() == 2


def test_invitation_mail_links_to_the_acceptance_page(
    client, applicant, organisation, outsider, django_capture_on_commit_callbacks
):
    client_for(client, applicant)
    with django_capture_on_commit_callbacks(execute=True):
        client.post(
            reverse("organisations:invite", args=[organisation.pk]),
            {"email": "Outsider@Outsider.example", "role": "member"},
        )
    invitation = Invitation.objects.get()
    assert invitation.email == "outsider@outsider.example"
    assert len(mail.outbox) == 1
    link = reverse("organisations:invitation", args=[invitation.token])
    assert link in mail.outbox[0].body

    client_for(client, outsider)
    assert client.get(link).status_code == 200
    response = client.post(link)
    assert response["Location"] == reverse("organisations:detail", args=[organisation.pk])
    assert Membership.objects.get(organisation=organisation, user=outsider).role == "member"


def test_invitation_needs_the_same_verified_address(
    client, applicant, organisation, other_applicant
):
    invitation = Invitation.objects.create(
        organisation=organisation, email="someone@else.example", invited_by=applicant
    )
    client_for(client, other_applicant)
    page = client.post(reverse("organisations:invitation", args=[invitation.token]))
    assert "This invitation was sent to someone@else.example" in page.content.decode()
    assert not Membership.objects.filter(user=other_applicant).exists()


def test_unverified_address_is_not_enough(client, applicant, organisation, other_applicant):
    EmailAddress.objects.filter(user=other_applicant).update(verified=False)
    invitation = Invitation.objects.create(
        organisation=organisation, email=other_applicant.email.upper(), invited_by=applicant
    )
    client_for(client, other_applicant).post(
        reverse("organisations:invitation", args=[invitation.token])
    )
    assert not Membership.objects.filter(user=other_applicant).exists()
    EmailAddress.objects.filter(user=other_applicant).update(verified=True)
    client.post(reverse("organisations:invitation", args=[invitation.token]))
    assert Membership.objects.filter(user=other_applicant).exists()


def test_invitation_is_used_once(client, applicant, organisation, other_applicant):
    invitation = Invitation.objects.create(
        organisation=organisation, email=other_applicant.email, invited_by=applicant
    )
    url = reverse("organisations:invitation", args=[invitation.token])
    client_for(client, other_applicant).post(url)
    # The owner removes the new member; the old link must not let them back in.
    Membership.objects.get(organisation=organisation, user=other_applicant).delete()

    page = client.post(url)

    assert page.status_code == 200
    assert "This invitation has already been used." in page.content.decode()
    assert not Membership.objects.filter(organisation=organisation, user=other_applicant).exists()


def test_inviting_an_existing_member_is_explained(client, applicant, organisation):
    client_for(client, applicant)
    page = client.post(
        reverse("organisations:invite", args=[organisation.pk]),
        {"email": applicant.email, "role": "member"},
    )
    assert "already a member" in page.content.decode()
    assert not Invitation.objects.exists()


def test_unknown_invitation_token_is_not_found(client, outsider):
    assert client_for(client, outsider).get("/invitations/nope/").status_code == 404


def test_my_organisation_goes_straight_to_the_only_one(client, applicant, organisation):
    response = client_for(client, applicant).get(reverse("organisations:list"))
    assert response["Location"] == reverse("organisations:detail", args=[organisation.pk])


def test_expired_invitation_is_refused(client, applicant, organisation, other_applicant):
    from datetime import timedelta

    from django.utils import timezone

    invitation = Invitation.objects.create(
        organisation=organisation, email=other_applicant.email, invited_by=applicant
    )
    Invitation.objects.filter(pk=invitation.pk).update(
        created_at=timezone.now() - timedelta(days=15)
    )
    page = client_for(client, other_applicant).post(
        reverse("organisations:invitation", args=[invitation.token])
    )
    assert "expired" in page.content.decode()
    assert not Membership.objects.filter(user=other_applicant).exists()


def test_identity_is_fixed_after_the_first_submission_but_details_stay_editable(
    client, applicant, organisation, open_call, call_manager
):
    from organisations import services
    from vetting.services.intake import application_submit

    application = make_application(applicant=applicant, call=open_call, organisation=organisation)
    application_submit(application=application, actor=applicant)
    client_for(client, applicant)
    form_page = client.get(_pages(organisation)[1]).content.decode()
    assert "first submitted application; the call manager can change it" in form_page
    response = client.post(
        _pages(organisation)[1],
        {**VALID, "registration_id": "DE-RIVAL-1", "staff_headcount": "14"},
    )
    assert response.status_code == 302
    organisation.refresh_from_db()
    assert organisation.registration_id == VALID["registration_id"]  # the posted value is ignored
    assert organisation.staff_headcount == 14
    with pytest.raises(services.OrganisationLocked, match="registration_id"):
        services.organisation_update(organisation=organisation, registration_id="DE-RIVAL-1")
    client_for(client, call_manager)
    admin = reverse("admin:organisations_organisation_change", args=[organisation.pk])
    assert client.get(admin).status_code == 200
