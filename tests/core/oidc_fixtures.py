"""A real OpenID Connect provider (tests/core/oidc_provider.py) in its own process, and hpcgate
configured to log in through it. Test modules import the fixtures they use from here."""

import json
import subprocess
import sys
import threading
from dataclasses import dataclass, field
from pathlib import Path

import pytest
import requests

from core.federation import oidc_apps_from_env

ROOT = Path(__file__).resolve().parents[2]
PROVIDER_ID = "testidp"
PROVIDER_NAME = "Test IdP"
CLIENT_ID = "hpcgate-tests"
CLIENT_SECRET = "test-client-secret-0123456789"
REVIEWER_ENTITLEMENT = "urn:geant:myaccessid.org:entitlement:hpcgate:reviewer"
PASSWORD = "provider-pass-phrase"


def person(sub: str, email: str, *, verified: bool = True, **claims) -> dict:
    return {
        "password": PASSWORD,
        "claims": {"sub": sub, "email": email, "email_verified": verified, **claims},
    }


DEFAULT_PEOPLE = {
    "ada": person("ada-7f3e", "ada@uni.example", name="Ada Lovelace"),
}


class ProviderUnavailable(RuntimeError):
    pass


@dataclass
class ProviderProcess:
    issuer: str
    people_file: Path
    process: subprocess.Popen


def _provider_start(people_file: Path) -> ProviderProcess:
    people_file.write_text(json.dumps(DEFAULT_PEOPLE))
    command = [
        sys.executable,
        "-m",
        "tests.core.oidc_provider",
        "--users",
        str(people_file),
        "--client-id",
        CLIENT_ID,
        "--client-secret",
        CLIENT_SECRET,
    ]
    process = subprocess.Popen(
        command, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )
    first_line: list[str] = []
    reader = threading.Thread(target=lambda: first_line.append(process.stdout.readline()))
    reader.start()
    reader.join(timeout=30)
    line = first_line[0].strip() if first_line else ""
    if not line.startswith("listening on "):
        process.kill()
        stderr = process.communicate(timeout=10)[1]
        raise ProviderUnavailable(
            f"the test OpenID Connect provider did not start: {line or stderr[-2000:]}"
        )
    issuer = line.removeprefix("listening on ")
    try:
        requests.get(f"{issuer}/.well-known/openid-configuration", timeout=10).raise_for_status()
    except requests.RequestException as error:
        process.kill()
        raise ProviderUnavailable(f"the test provider does not answer: {error}") from error
    return ProviderProcess(issuer=issuer, people_file=people_file, process=process)


@pytest.fixture(scope="session")
def oidc_provider_process(tmp_path_factory):
    """The provider process, once per session, or why it could not start."""
    try:
        running = _provider_start(tmp_path_factory.mktemp("oidc") / "people.json")
    except (ProviderUnavailable, OSError) as error:
        yield ProviderUnavailable(str(error))
        return
    yield running
    running.process.terminate()
    try:
        running.process.wait(timeout=10)
    except subprocess.TimeoutExpired:
        running.process.kill()


@dataclass
class TestProvider:
    issuer: str
    people_file: Path
    settings: object
    entitlement_roles: dict[str, str] = field(default_factory=dict)

    provider_id = PROVIDER_ID

    def people_set(self, **people: dict) -> None:
        """Replace the provider's people: log-in name -> person(...)."""
        self.people_file.write_text(json.dumps(people))

    def configure(
        self, *, entitlement_roles: dict[str, str] | None = None, link_by_email: bool = True
    ) -> None:
        """Point hpcgate's settings at this provider, as the environment would."""
        prefix = f"OIDC_{PROVIDER_ID.upper()}_"
        environ = {
            "OIDC_PROVIDERS": PROVIDER_ID,
            prefix + "ISSUER": self.issuer,
            prefix + "CLIENT_ID": CLIENT_ID,
            prefix + "SECRET": CLIENT_SECRET,
            prefix + "NAME": PROVIDER_NAME,
            prefix + "SCOPES": "openid email profile eduperson_entitlement orcid",
            prefix + "LINK_BY_EMAIL": "on" if link_by_email else "off",
            prefix + "ENTITLEMENT_ROLES": ",".join(
                f"{entitlement}={role}" for entitlement, role in (entitlement_roles or {}).items()
            ),
        }
        self.settings.SOCIALACCOUNT_PROVIDERS = {
            "openid_connect": {"APPS": oidc_apps_from_env(environ)}
        }


def provider_for_test(oidc_provider_process, settings) -> TestProvider:
    if isinstance(oidc_provider_process, Exception):
        raise oidc_provider_process
    oidc_provider_process.people_file.write_text(json.dumps(DEFAULT_PEOPLE))
    provider = TestProvider(
        issuer=oidc_provider_process.issuer,
        people_file=oidc_provider_process.people_file,
        settings=settings,
    )
    provider.configure()
    # allauth's per-address limits would count every log-in of the session against the next.
    settings.ACCOUNT_RATE_LIMITS = False
    return provider


@pytest.fixture
def oidc_provider(oidc_provider_process, settings) -> TestProvider:
    """hpcgate logging in through the running provider; its people reset to DEFAULT_PEOPLE."""
    try:
        return provider_for_test(oidc_provider_process, settings)
    except ProviderUnavailable as error:
        pytest.fail(str(error))


def log_in_through_provider(
    client, *, login: str, password: str = PASSWORD, next_url: str = "/apply/", process="login"
):
    """The whole code flow with Django's test client: hpcgate sends the browser to the provider,
    the person signs in on its form, the provider sends them back with a code, and hpcgate
    exchanges it over HTTP. Returns hpcgate's answer to the callback."""
    start = client.post(f"/accounts/oidc/{PROVIDER_ID}/login/?process={process}&next={next_url}")
    assert start.status_code == 302, start.content.decode()[:2000]
    at_provider = requests.Session()
    form = at_provider.get(start["Location"], timeout=10)
    assert form.status_code == 200, form.text
    signed_in = at_provider.post(
        form.url, data={"username": login, "password": password}, allow_redirects=False, timeout=10
    )
    assert signed_in.status_code == 302, signed_in.text
    callback = signed_in.headers["Location"]
    assert callback.startswith("http://testserver/"), callback
    return client.get(callback.removeprefix("http://testserver"))
