import re

import pytest
from allauth.account.models import EmailAddress
from django.core import mail
from django.urls import reverse


@pytest.fixture(autouse=True)
def no_rate_limits(settings):
    # The file cache outlives a test run; allauth's per-address limits would skip mails.
    settings.ACCOUNT_RATE_LIMITS = False


@pytest.mark.django_db
def test_sign_up_verify_and_log_in_with_the_site_layout(client):
    page = client.get(reverse("account_signup")).content.decode()
    assert "hpcgate" in page and 'class="site-header"' in page
    assert re.search(r'<label for="id_email"', page)
    response = client.post(
        reverse("account_signup"),
        {
            "email": "Founder@Startup.example",
            "password1": "a-long-pass-phrase-9",
            "password2": "a-long-pass-phrase-9",
        },
    )
    assert response.status_code == 302
    assert len(mail.outbox) == 1
    link = re.search(r"https?://[^\s]+/accounts/confirm-email/[^\s]+", mail.outbox[0].body).group(0)
    path = link.split("testserver", 1)[1]
    confirm = client.get(path)
    assert confirm.status_code == 200
    assert 'class="button"' in confirm.content.decode()
    client.post(path)
    client.logout()
    response = client.post(
        reverse("account_login"),
        {"login": "founder@startup.example", "password": "a-long-pass-phrase-9"},
    )
    assert response.status_code == 302
    assert client.get(reverse("vetting:list")).status_code == 200


@pytest.mark.django_db
def test_login_errors_are_shown_in_the_page(client):
    page = client.post(reverse("account_login"), {"login": "x@example.com", "password": "nope"})
    text = page.content.decode()
    assert "error-summary" in text
    assert 'class="site-footer"' in text


@pytest.mark.django_db
def test_unverified_users_cannot_log_in(client):
    client.post(
        reverse("account_signup"),
        {
            "email": "new@startup.example",
            "password1": "a-long-pass-phrase-9",
            "password2": "a-long-pass-phrase-9",
        },
    )
    # The sign-up itself worked: the account exists with its address still unverified.
    address = EmailAddress.objects.get(email__iexact="new@startup.example")
    assert not address.verified
    client.logout()
    client.post(
        reverse("account_login"),
        {"login": "new@startup.example", "password": "a-long-pass-phrase-9"},
    )
    assert client.get(reverse("vetting:list")).status_code == 302


@pytest.mark.django_db
def test_password_reset_page_uses_the_site_layout(client):
    page = client.get(reverse("account_reset_password")).content.decode()
    assert 'class="site-header"' in page and 'class="card auth-panel"' in page
