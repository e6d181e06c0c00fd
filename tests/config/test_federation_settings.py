"""OIDC_* and LOCAL_ACCOUNTS from the environment: the allauth apps they make, and the loud
refusals when they are incomplete or contradict each other."""

import pytest
from django.core.exceptions import ImproperlyConfigured

from core.federation import login_policy_check, oidc_apps_from_env
from tests.config.test_settings import PRODUCTION_KEY, _run

MYACCESSID = {
    "OIDC_PROVIDERS": "myaccessid, keycloak",
    "OIDC_MYACCESSID_ISSUER": "https://proxy.myaccessid.example/",
    "OIDC_MYACCESSID_CLIENT_ID": "hpcgate",
    "OIDC_MYACCESSID_SECRET": "s3cret",
    "OIDC_MYACCESSID_NAME": "MyAccessID",
    "OIDC_MYACCESSID_SCOPES": "openid,email profile eduperson_entitlement",
    "OIDC_MYACCESSID_ENTITLEMENT_ROLES": (
        "urn:geant:myaccessid.org:entitlement:hpcgate:reviewer=reviewer, "
        "urn:geant:myaccessid.org:entitlement:hpcgate:call-manager=call manager"
    ),
    "OIDC_KEYCLOAK_ISSUER": "https://sso.centre.example/realms/staff",
    "OIDC_KEYCLOAK_CLIENT_ID": "hpcgate",
    "OIDC_KEYCLOAK_SECRET": "other",
}


def test_each_listed_provider_becomes_an_openid_connect_app():
    myaccessid, keycloak = oidc_apps_from_env(MYACCESSID)

    assert myaccessid["provider_id"] == "myaccessid" and myaccessid["name"] == "MyAccessID"
    assert (myaccessid["client_id"], myaccessid["secret"]) == ("hpcgate", "s3cret")
    assert myaccessid["settings"]["server_url"] == "https://proxy.myaccessid.example"
    assert myaccessid["settings"]["scope"] == [
        "openid",
        "email",
        "profile",
        "eduperson_entitlement",
    ]
    assert myaccessid["settings"]["entitlement_roles"] == {
        "urn:geant:myaccessid.org:entitlement:hpcgate:reviewer": "reviewer",
        "urn:geant:myaccessid.org:entitlement:hpcgate:call-manager": "call manager",
    }
    assert myaccessid["settings"]["entitlement_claim"] == "eduperson_entitlement"
    assert keycloak["name"] == "keycloak"
    assert keycloak["settings"]["scope"] == ["openid", "email", "profile"]
    assert keycloak["settings"]["entitlement_roles"] == {}
    assert myaccessid["settings"]["email_authentication"] is True


def test_linking_by_email_can_be_turned_off_per_provider():
    apps = oidc_apps_from_env({**MYACCESSID, "OIDC_MYACCESSID_LINK_BY_EMAIL": "off"})
    assert apps[0]["settings"]["email_authentication"] is False
    assert apps[1]["settings"]["email_authentication"] is True


def test_no_providers_configured_means_no_apps():
    assert oidc_apps_from_env({}) == []


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"OIDC_KEYCLOAK_SECRET": ""}, "'keycloak' is incomplete: set OIDC_KEYCLOAK_SECRET"),
        ({"OIDC_PROVIDERS": "myaccessid"}, "OIDC_KEYCLOAK_CLIENT_ID, OIDC_KEYCLOAK_ISSUER"),
        ({"OIDC_PROVIDERS": "MyAccess ID"}, "not a valid provider id"),
        ({"OIDC_PROVIDERS": "keycloak,myaccessid,keycloak"}, "names keycloak twice"),
        ({"OIDC_KEYCLOAK_ISSUER": "http://sso.centre.example"}, "OIDC_KEYCLOAK_ISSUER must be"),
        ({"OIDC_KEYCLOAK_ISSUER": "sso.centre.example"}, "OIDC_KEYCLOAK_ISSUER must be"),
        ({"OIDC_KEYCLOAK_SCOPES": "email profile"}, "OIDC_KEYCLOAK_SCOPES must include"),
        ({"OIDC_KEYCLOAK_ENTITLEMENT_ROLES": "reviewer"}, "is not 'entitlement=role'"),
        ({"OIDC_KEYCLOAK_ENTITLEMENT_ROLES": "a=reviewer,a=operator"}, "maps 'a' to two roles"),
        ({"OIDC_KEYCLOAK_LINK_BY_EMAIL": "never"}, "OIDC_KEYCLOAK_LINK_BY_EMAIL must be on or off"),
    ],
)
def test_incomplete_or_malformed_provider_settings_are_refused(change, message):
    with pytest.raises(ImproperlyConfigured, match=message):
        oidc_apps_from_env({**MYACCESSID, **change})


def test_plain_http_issuer_is_only_for_a_provider_on_this_machine():
    env = {**MYACCESSID, "OIDC_KEYCLOAK_ISSUER": "http://127.0.0.1:8080/realms/dev"}
    assert oidc_apps_from_env(env)[1]["settings"]["server_url"] == (
        "http://127.0.0.1:8080/realms/dev"
    )


def test_local_accounts_off_or_staff_through_a_provider_need_a_provider():
    with pytest.raises(ImproperlyConfigured, match="LOCAL_ACCOUNTS is off"):
        login_policy_check(apps=[], local_accounts=False, staff_oidc_only=False)
    with pytest.raises(ImproperlyConfigured, match="OIDC_REQUIRED_FOR_STAFF is on"):
        login_policy_check(apps=[], local_accounts=True, staff_oidc_only=True)
    login_policy_check(apps=[], local_accounts=True, staff_oidc_only=False)
    login_policy_check(apps=[{}], local_accounts=False, staff_oidc_only=True)


def _check(**env: str):
    return _run(
        ["manage.py", "check"],
        SECRET_KEY=PRODUCTION_KEY,
        ALLOWED_HOSTS="hpc.example.eu",
        **{"OIDC_PROVIDERS": "", "LOCAL_ACCOUNTS": "on", "OIDC_REQUIRED_FOR_STAFF": "off", **env},
    )


def test_site_refuses_to_start_with_an_incomplete_provider():
    result = _check(OIDC_PROVIDERS="myaccessid", OIDC_MYACCESSID_ISSUER="https://p.example")
    assert result.returncode != 0
    assert "set OIDC_MYACCESSID_CLIENT_ID, OIDC_MYACCESSID_SECRET" in result.stderr


def test_site_refuses_to_start_with_a_setting_for_an_unlisted_provider():
    result = _check(OIDC_KEYCLOAK_ISSUER="https://sso.example")
    assert result.returncode != 0
    assert "OIDC_KEYCLOAK_ISSUER set, but OIDC_PROVIDERS does not list" in result.stderr


def test_site_refuses_to_start_with_an_entitlement_mapped_to_no_role():
    result = _check(
        OIDC_PROVIDERS="myaccessid",
        OIDC_MYACCESSID_ISSUER="https://p.example",
        OIDC_MYACCESSID_CLIENT_ID="hpcgate",
        OIDC_MYACCESSID_SECRET="s",
        OIDC_MYACCESSID_ENTITLEMENT_ROLES="urn:x=reviewers",
    )
    assert result.returncode != 0
    assert "'urn:x' to 'reviewers', which is not a role" in result.stderr


def test_site_without_local_accounts_starts_with_a_provider_and_refuses_without_one():
    assert "LOCAL_ACCOUNTS is off" in _check(LOCAL_ACCOUNTS="off").stderr
    result = _check(
        LOCAL_ACCOUNTS="off",
        OIDC_REQUIRED_FOR_STAFF="on",
        OIDC_PROVIDERS="myaccessid",
        OIDC_MYACCESSID_ISSUER="https://p.example",
        OIDC_MYACCESSID_CLIENT_ID="hpcgate",
        OIDC_MYACCESSID_SECRET="s",
    )
    assert result.returncode == 0, result.stderr
