"""Claims, entitlement-to-role mapping and the password policy: pure functions, and the one
function that applies a provider's entitlements to a user."""

import pytest
from django.contrib.auth.models import Group
from django.core.exceptions import ImproperlyConfigured

from core import roles
from core.identity import (
    claims_merge,
    identity_from_claims,
    role_changes,
    role_maps_check,
    user_roles_from_provider,
)
from core.login_policy import password_login_allowed

REVIEWER_URN = "urn:geant:myaccessid.org:entitlement:hpcgate:reviewer"
MANAGER_URN = "urn:geant:myaccessid.org:entitlement:hpcgate:call-manager"
ROLE_MAP = {REVIEWER_URN: roles.REVIEWER, MANAGER_URN: roles.CALL_MANAGER}


def test_mapped_entitlement_adds_its_role():
    change = role_changes(entitlements=[REVIEWER_URN, "urn:other"], role_map=ROLE_MAP, current=[])
    assert change.add == {roles.REVIEWER} and change.remove == set()


def test_lost_entitlement_removes_only_roles_the_map_manages():
    change = role_changes(
        entitlements=[], role_map=ROLE_MAP, current=[roles.REVIEWER, roles.OPERATOR]
    )
    assert change.add == set() and change.remove == {roles.REVIEWER}


def test_roles_already_held_are_neither_added_nor_removed():
    change = role_changes(
        entitlements=[REVIEWER_URN, MANAGER_URN],
        role_map=ROLE_MAP,
        current=[roles.REVIEWER, roles.CALL_MANAGER],
    )
    assert not change.add and not change.remove


def test_empty_map_changes_nothing_whatever_the_entitlements():
    change = role_changes(entitlements=[REVIEWER_URN], role_map={}, current=[roles.REVIEWER])
    assert not change.add and not change.remove


def test_two_entitlements_may_map_to_one_role():
    role_map = {REVIEWER_URN: roles.REVIEWER, "urn:keycloak:reviewers": roles.REVIEWER}
    change = role_changes(
        entitlements=["urn:keycloak:reviewers"], role_map=role_map, current=[roles.REVIEWER]
    )
    assert not change.add and not change.remove


def test_userinfo_claims_win_over_the_id_token():
    extra = {"id_token": {"sub": "1", "email": "old@x.example"}, "userinfo": {"email": "new@x"}}
    assert claims_merge(extra) == {"sub": "1", "email": "new@x"}
    assert claims_merge({"sub": "2"}) == {"sub": "2"}


@pytest.mark.parametrize(
    "claims",
    [
        {"orcid": "0000-0002-1825-0097"},
        {"orcid": "https://orcid.org/0000-0002-1825-0097"},
        {"eduperson_orcid": ["http://orcid.org/0000-0002-1825-0097"]},
        {"orcid": "not an orcid", "eduperson_orcid": "https://orcid.org/0000-0002-1825-0097"},
    ],
)
def test_orcid_is_read_bare_or_as_a_url(claims):
    identity = identity_from_claims({"sub": "s", **claims})
    assert identity.orcid == "0000-0002-1825-0097"
    assert identity.orcid_url == "https://orcid.org/0000-0002-1825-0097"


def test_orcid_with_a_check_digit_x_and_no_orcid_at_all():
    assert identity_from_claims({"orcid": "0000-0002-1694-233x"}).orcid == "0000-0002-1694-233X"
    assert identity_from_claims({"orcid": "javascript:alert(1)"}).orcid_url == ""
    assert identity_from_claims({}).orcid == ""


def test_unique_id_comes_from_voperson_id_or_eduperson_unique_id():
    assert identity_from_claims({"voperson_id": "a@myaccessid.example"}).unique_id == (
        "a@myaccessid.example"
    )
    assert identity_from_claims({"eduperson_unique_id": ["b@uni.example"]}).unique_id == (
        "b@uni.example"
    )
    assert identity_from_claims({}).unique_id == ""


@pytest.mark.parametrize(
    ("staff", "local_accounts", "staff_oidc_only", "allowed"),
    [
        (False, True, False, True),
        (True, True, False, True),
        (False, False, False, False),
        (True, False, False, True),
        (True, True, True, False),
        (False, True, True, True),
        (True, False, True, False),
        (False, False, True, False),
    ],
)
def test_who_may_log_in_with_a_password(staff, local_accounts, staff_oidc_only, allowed):
    assert (
        password_login_allowed(
            staff=staff, local_accounts=local_accounts, staff_oidc_only=staff_oidc_only
        )
        is allowed
    )


def _app(entitlement_roles):
    return {
        "provider_id": "my-idp",
        "settings": {
            "entitlement_claim": "eduperson_entitlement",
            "entitlement_roles": entitlement_roles,
        },
    }


def test_a_mapping_to_an_unknown_role_stops_the_site_with_the_variable_named(settings):
    settings.SOCIALACCOUNT_PROVIDERS = {
        "openid_connect": {"APPS": [_app({REVIEWER_URN: "reviewers"})]}
    }
    with pytest.raises(ImproperlyConfigured, match="OIDC_MY_IDP_ENTITLEMENT_ROLES.*'reviewers'"):
        role_maps_check()
    settings.SOCIALACCOUNT_PROVIDERS = {"openid_connect": {"APPS": [_app(ROLE_MAP)]}}
    role_maps_check()


@pytest.mark.django_db
def test_role_from_the_provider_makes_staff_and_losing_it_unmakes(applicant):
    app_settings = _app(ROLE_MAP)["settings"]

    user_roles_from_provider(
        user=applicant, app_settings=app_settings, claims={"eduperson_entitlement": REVIEWER_URN}
    )
    applicant.refresh_from_db()
    assert applicant.is_staff
    assert applicant.has_perm("vetting.add_review")

    user_roles_from_provider(user=applicant, app_settings=app_settings, claims={})
    applicant.refresh_from_db()
    assert not applicant.is_staff and not applicant.groups.exists()


@pytest.mark.django_db
def test_superuser_stays_staff_and_unmapped_staff_stay_as_they_are(applicant, operator):
    app_settings = _app(ROLE_MAP)["settings"]
    applicant.is_staff = applicant.is_superuser = True
    applicant.save()
    applicant.groups.add(Group.objects.get(name=roles.REVIEWER))

    user_roles_from_provider(user=applicant, app_settings=app_settings, claims={})
    user_roles_from_provider(user=operator, app_settings=app_settings, claims={})

    applicant.refresh_from_db()
    operator.refresh_from_db()
    assert applicant.is_staff and not applicant.groups.exists()
    assert operator.is_staff
    assert list(operator.groups.values_list("name", flat=True)) == [roles.OPERATOR]


@pytest.mark.django_db
def test_no_mapping_leaves_the_user_alone(reviewer):
    change = user_roles_from_provider(
        user=reviewer, app_settings={"entitlement_roles": {}}, claims={}
    )
    reviewer.refresh_from_db()
    assert not change.add and not change.remove
    assert reviewer.is_staff and reviewer.groups.filter(name=roles.REVIEWER).exists()
