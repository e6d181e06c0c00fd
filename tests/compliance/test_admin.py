import pytest

from compliance.models import Alert, LargeRunEntry
from tests.compliance.test_check_thresholds import check, split_model  # noqa: F401  (fixture)
from tests.conftest import client_for


@pytest.fixture
def raised(split_model):  # noqa: F811
    check()
    return Alert.objects.all()


def test_operator_acknowledges_alerts_with_a_note_in_the_admin(client, raised, operator):
    alert = raised.get(level="gpai", scope="model")
    c = client_for(client, operator)
    changelist = "/admin/compliance/alert/"
    assert "north-13b" in c.get(changelist).content.decode()
    confirm = c.post(changelist, {"action": "acknowledge", "_selected_action": [alert.pk]})
    assert "Acknowledge alerts" in confirm.content.decode()
    done = c.post(
        changelist,
        {"action": "acknowledge", "_selected_action": [alert.pk], "apply": "1", "note": "Called."},
        follow=True,
    )
    assert "Acknowledged 1 alert(s)." in done.content.decode()
    alert.refresh_from_db()
    assert (alert.acknowledged_by, alert.acknowledgement_note) == (operator, "Called.")


def test_reviewer_cannot_see_alerts(client, raised, reviewer):
    assert client_for(client, reviewer).get("/admin/compliance/alert/").status_code == 403


def test_governance_records_the_notification_date_and_nothing_else(
    client, raised, governance_officer
):
    entry = LargeRunEntry.objects.get(scope="model", category="gpai")
    c = client_for(client, governance_officer)
    page = c.get(f"/admin/compliance/largerunentry/{entry.pk}/change/").content.decode()
    assert 'name="notified_on"' in page
    assert 'name="compute_flop"' not in page


def test_register_admin_exports_csv(client, raised, governance_officer):
    entries = LargeRunEntry.objects.all()
    response = client_for(client, governance_officer).post(
        "/admin/compliance/largerunentry/",
        {"action": "export_csv", "_selected_action": [e.pk for e in entries]},
    )
    assert response["Content-Type"].startswith("text/csv")
    assert "north-13b" in response.content.decode()
