from io import StringIO

import pytest
from django.core.management import call_command

from organisations.models import Membership, Organisation
from vetting.models import Application


def _seed() -> str:
    out = StringIO()
    call_command("seed_demo", stdout=out)
    return out.getvalue()


@pytest.mark.django_db
def test_seed_creates_the_demo_startups_with_their_founders_as_owners():
    output = _seed()
    assert "Demo applications:" in output
    aurora = Organisation.objects.get(legal_name="Aurora AI Oy")
    lince = Organisation.objects.get(legal_name="Lince Labs SL")
    assert (aurora.country, lince.country) == ("FI", "ES")
    assert Membership.objects.get(organisation=aurora).user.username == "applicant"
    assert Membership.objects.get(organisation=lince, role="owner").user.username == "applicant2"


@pytest.mark.django_db
def test_seed_has_draft_and_submitted_applications_with_snapshots():
    _seed()
    states = set(Application.objects.values_list("state", flat=True))
    assert {"draft", "submitted"} <= states
    for application in Application.objects.filter(state="submitted"):
        assert application.estimate_snapshot["total"]["flop_best"] > 0
        assert application.estimate_policy is not None


@pytest.mark.django_db
def test_seed_twice_adds_no_applications():
    _seed()
    counts = (Organisation.objects.count(), Application.objects.count())
    _seed()
    assert counts == (Organisation.objects.count(), Application.objects.count())
