"""E-mail as the site sends it: one message per person, links that work outside a request."""

from collections.abc import Iterable

from django.conf import settings
from django.core.mail import send_mass_mail
from django.template.loader import render_to_string


def one_line(text: str) -> str:
    """Text for a mail header: a subject with a line break in it cannot be sent at all
    (BadHeaderError), and a task retrying it would never stop."""
    return " ".join(str(text).split())


def site_url(path: str) -> str:
    """The absolute address of a site path, for mail that workers send outside any request."""
    return settings.SITE_URL + path


def mail_each(template: str, context: dict, recipients: Iterable[str]) -> int:
    """Render `<template>_subject.txt` and `<template>_body.txt` and send one message to each
    recipient, through one connection, so nobody learns who else was told. Returns the count."""
    recipients = sorted(set(recipients))
    if not recipients:
        return 0
    subject = one_line(render_to_string(f"{template}_subject.txt", context))
    body = render_to_string(f"{template}_body.txt", context)
    return send_mass_mail([(f"[hpcgate] {subject}", body, None, [email]) for email in recipients])
