from io import StringIO

import pytest
from django.contrib.auth import get_user_model
from django.core.management import call_command

from systems.models import AccessMode, Call, Partition, ThresholdPolicy

DEMO_USERS = {"applicant", "applicant2", "reviewer", "reviewer2", "manager", "operator"}

SYSTEMS = {
    ("lumi", "standard-g"): (8, 191.5, 280),
    ("leonardo", "boost_usr_prod"): (4, 312, 400),
    ("marenostrum5", "acc"): (4, 989, 700),
    ("jupiter", "booster"): (4, 989, 700),
    ("vega", "gpu"): (4, 312, 400),
    ("meluxina", "gpu"): (4, 312, 400),
}


def _seed() -> str:
    out = StringIO()
    call_command("seed_demo", stdout=out)
    return out.getvalue()


@pytest.mark.django_db
def test_seed_loads_the_systems_table_of_the_domain():
    _seed()
    found = {
        (p.cluster.name, p.name): (p.gpus_per_node, float(p.peak_tflops), p.power_watts)
        for p in Partition.objects.select_related("cluster")
    }
    assert found == SYSTEMS


@pytest.mark.django_db
def test_seed_opens_one_call_with_the_three_access_modes():
    _seed()
    call = Call.objects.open_now().get()
    kinds = set(call.access_modes.values_list("kind", flat=True))
    assert kinds == {"playground", "fast_lane", "large_scale"}
    fast_lane = call.access_modes.get(kind=AccessMode.Kind.FAST_LANE)
    assert fast_lane.max_gpu_hours == 50_000
    assert fast_lane.partitions.count() == 6


@pytest.mark.django_db
def test_seed_creates_demo_users_that_can_log_in(client):
    output = _seed()
    assert set(get_user_model().objects.values_list("username", flat=True)) >= DEMO_USERS
    assert "hpcgate-demo" in output
    assert client.login(username="manager", password="hpcgate-demo")


@pytest.mark.django_db
def test_seed_twice_changes_nothing():
    _seed()
    counts = (
        Partition.objects.count(),
        Call.objects.count(),
        AccessMode.objects.count(),
        get_user_model().objects.count(),
        ThresholdPolicy.objects.count(),
    )
    _seed()
    assert counts == (
        Partition.objects.count(),
        Call.objects.count(),
        AccessMode.objects.count(),
        get_user_model().objects.count(),
        ThresholdPolicy.objects.count(),
    )


@pytest.mark.django_db
def test_seed_refuses_demo_users_when_debug_is_off_but_loads_the_reference_data(settings):
    settings.HPCGATE_ALLOW_DEMO_USERS = False
    err = StringIO()
    call_command("seed_demo", stdout=StringIO(), stderr=err)
    assert "--allow-demo-users" in err.getvalue()
    assert not get_user_model().objects.filter(username="applicant").exists()
    assert Partition.objects.count() == 6
    assert ThresholdPolicy.objects.in_force() is not None
    call_command("seed_demo", "--allow-demo-users", stdout=StringIO())
    assert get_user_model().objects.filter(username="applicant").exists()


@pytest.mark.django_db
def test_seed_puts_the_default_threshold_policy_in_force():
    _seed()
    policy = ThresholdPolicy.objects.in_force()
    assert (policy.gpai_flop, policy.systemic_risk_flop, policy.default_utilisation) == (
        1e23,
        1e25,
        0.4,
    )
    assert policy.allocation_alert_percentages == [75, 90, 100]
