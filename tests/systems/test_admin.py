"""The threshold policy in the admin: versions in force are frozen; new ones are made from them."""

from datetime import timedelta

import pytest
from django.utils import timezone

from systems.forms import flop_parse
from systems.models import ThresholdPolicy
from tests.conftest import client_for

pytestmark = pytest.mark.django_db

LIST = "/admin/systems/thresholdpolicy/"


@pytest.fixture
def policy(reference_data):
    return ThresholdPolicy.objects.get(version=1)


def _form_data(**overrides):
    data = {
        "version": "2",
        "effective_from": (timezone.localdate() + timedelta(days=1)).isoformat(),
        "gpai_flop": "1e23",
        "systemic_risk_flop": "10^25",
        "modification_share": "33.33",
        "warning_share": "50",
        "default_utilisation": "40",
        "allocation_alert_percentages": "75, 90, 100",
        "footprint_gpus": "512",
        "footprint_memory_gb": "32768",
        "footprint_min_systems": "2",
        "footprint_min_hours": "24",
        "job_memory_gb": "65536",
        "plan_overrun_factor": "1.0",
        "model_declaration_factor": "1.5",
        "note": "",
    }
    data.update(overrides)
    return data


def test_policy_list_shows_thresholds_and_shares_as_people_read_them(
    client, governance_officer, policy
):
    text = client_for(client, governance_officer).get(LIST).content.decode()
    assert "1.0 × 10²³ FLOP" in text and "1.0 × 10²⁵ FLOP" in text
    assert "33.3 %" in text and "40 %" in text and "75 %, 90 %, 100 %" in text
    assert "100000000000000000000000" not in text and "0.3333333333333333" not in text
    assert "in force" in text


def test_a_version_in_force_cannot_be_changed_or_deleted(client, governance_officer, policy):
    client_for(client, governance_officer)
    page = client.get(f"{LIST}{policy.pk}/change/")
    assert page.status_code == 200
    text = page.content.decode()
    assert 'name="gpai_flop"' not in text  # read only
    assert "New version from this one" in text
    assert "1.0 × 10²³ FLOP" in text
    response = client.post(f"{LIST}{policy.pk}/change/", _form_data(version="1", gpai_flop="1e22"))
    assert response.status_code == 403
    assert client.post(f"{LIST}{policy.pk}/delete/", {"post": "yes"}).status_code == 403
    policy.refresh_from_db()
    assert policy.gpai_flop == 1e23


def test_new_version_from_this_one_starts_with_its_figures_in_form_fields(
    client, governance_officer, policy
):
    text = (
        client_for(client, governance_officer).get(f"{LIST}add/?from={policy.pk}").content.decode()
    )
    assert 'name="version" value="2"' in text
    assert 'name="gpai_flop" value="1e23"' in text
    assert 'name="modification_share" value="33.33"' in text
    assert 'name="allocation_alert_percentages" value="75, 90, 100"' in text
    assert f'name="made_from" value="{policy.pk}"' in text
    assert "[]" not in text.split('name="allocation_alert_percentages"')[1][:80]
    tomorrow = (timezone.localdate() + timedelta(days=1)).isoformat()
    assert f'name="effective_from" value="{tomorrow}"' in text


def test_saving_the_new_version_keeps_unchanged_shares_exact(client, governance_officer, policy):
    response = client_for(client, governance_officer).post(
        f"{LIST}add/", _form_data(gpai_flop="2 × 10²³", warning_share="60 %")
    )
    assert response.status_code == 302, response.content.decode()[:2000]
    new = ThresholdPolicy.objects.get(version=2)
    assert new.gpai_flop == 2e23
    assert new.systemic_risk_flop == 1e25
    assert new.warning_share == pytest.approx(0.6)
    assert new.allocation_alert_percentages == [75, 90, 100]
    assert new.default_utilisation == pytest.approx(0.4)
    # a planned version can still be corrected until it takes effect
    response = client.post(
        f"{LIST}{new.pk}/change/", _form_data(allocation_alert_percentages="80, 100")
    )
    assert response.status_code == 302
    new.refresh_from_db()
    assert new.allocation_alert_percentages == [80, 100]
    assert ThresholdPolicy.objects.in_force() == policy


def test_the_exact_share_of_the_source_survives_when_untouched(client, governance_officer, policy):
    client_for(client, governance_officer).post(f"{LIST}add/", _form_data(made_from=policy.pk))
    assert ThresholdPolicy.objects.get(version=2).modification_share == 1 / 3


def test_a_new_version_cannot_take_effect_in_the_past(client, governance_officer, policy):
    yesterday = (timezone.localdate() - timedelta(days=1)).isoformat()
    response = client_for(client, governance_officer).post(
        f"{LIST}add/", _form_data(effective_from=yesterday, allocation_alert_percentages="75, x")
    )
    assert response.status_code == 200
    text = response.content.decode()
    assert "takes effect today or later" in text
    assert "Give whole percentages" in text
    assert not ThresholdPolicy.objects.filter(version=2).exists()


@pytest.mark.parametrize(
    ("text", "value"),
    [("1e23", 1e23), ("10^25", 1e25), ("1.5 × 10²³", 1.5e23), ("3 x 10**22", 3e22), ("1,000", 1e3)],
)
def test_flop_is_read_as_people_type_it(text, value):
    assert flop_parse(text) == pytest.approx(value)
