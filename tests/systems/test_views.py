from datetime import timedelta

import pytest
from django.utils import timezone

from systems.models import Call


@pytest.mark.django_db
def test_landing_lists_the_open_call_with_its_access_modes(client, open_call):
    page = client.get("/").content.decode()
    assert open_call.title in page
    labels = ("Playground", "Fast Lane", "Large Scale", "LUMI")
    for label in (*labels, "up to 50,000 GPU-hours", "more than 50,000 GPU-hours"):
        assert label in page


@pytest.mark.django_db
def test_landing_hides_draft_and_closed_calls(client, reference_data):
    now = timezone.now()
    Call.objects.create(title="Secret draft", slug="draft", opens_at=now - timedelta(days=1))
    Call.objects.create(
        title="Last year's call",
        slug="old",
        state=Call.State.OPEN,
        opens_at=now - timedelta(days=400),
        closes_at=now - timedelta(days=30),
    )
    page = client.get("/").content.decode()
    assert "Secret draft" not in page
    assert "Last year" not in page
    assert "No call is open" in page


@pytest.mark.django_db
def test_landing_serves_every_asset_from_the_site_itself(client, open_call):
    page = client.get("/").content.decode()
    assert "http://" not in page.replace("http://www.w3.org", "")
    assert "https://" not in page
    assert "/static/css/hpcgate.css" in page


@pytest.mark.django_db
def test_landing_query_count_does_not_grow_with_calls(
    client, open_call, django_assert_max_num_queries
):
    for i in range(5):
        Call.objects.create(
            title=f"Extra {i}",
            slug=f"extra-{i}",
            state=Call.State.OPEN,
            opens_at=timezone.now() - timedelta(days=1),
        )
    with django_assert_max_num_queries(6):
        client.get("/")


@pytest.mark.django_db
def test_landing_lists_access_modes_from_smallest_to_largest(client, open_call):
    page = client.get("/").content.decode()
    assert page.index("Playground") < page.index("Fast Lane") < page.index("Large Scale")
