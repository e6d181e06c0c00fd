"""import_allocations and the Allocation JSON: round trip, validation, idempotence."""

import copy
import json

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError

from allocations import services
from allocations.models import Allocation, AllocationEvent
from allocations.transfer import allocations_import, allocations_to_json
from organisations.models import Organisation
from tests.factories import make_allocation, make_organisation
from usage.models import UsageRecord

pytestmark = pytest.mark.django_db

ENTRY = {
    "organisation": {"name": "Acme AI Oy", "country": "FI", "registration_id": "FI12345678",
                     "controlled_by": None},
    "project": "Finnish legal LLM",
    "cluster": "lumi",
    "partition": "standard-g",
    "account": "acme_llm",
    "gpu_hours": 50000,
    "start": "2026-01-01",
    "end": "2026-06-30",
    "state": "active",
    "users": ["alice", "bob"],
    "model": "acme-legal-7b",
}  # fmt: skip


def entry(**overrides):
    data = copy.deepcopy(ENTRY)
    data.update(overrides)
    return data


def test_contract_example_creates_organisation_allocation_users_and_model(reference_data):
    report = allocations_import({"allocations": [ENTRY]})

    assert report.ok and (report.created, report.organisations_created) == (1, 1)
    allocation = Allocation.objects.get()
    assert (allocation.cluster.name, allocation.partition.name, allocation.account) == (
        "lumi", "standard-g", "acme_llm"
    )  # fmt: skip
    assert (allocation.gpu_hours, allocation.state, allocation.model_name) == (
        50000, "active", "acme-legal-7b"
    )  # fmt: skip
    assert list(allocation.users.values_list("username", flat=True)) == ["alice", "bob"]
    assert allocation.organisation.registration_id == "FI12345678"
    assert allocation.events.get().action == "imported"


def test_json_export_import_export_gives_identical_bytes(reference_data):
    parent = make_organisation(legal_name="Holding Oy", registration_id="FI00000001")
    child = make_organisation(legal_name="Ääkkönen & Søn – AI", country="DK", registration_id="DK7")
    child.controlled_by_registration_id = parent.registration_id
    child.save()
    make_allocation(
        organisation=child, account="aak_1", model_name="aak-13b", users=("zed", "_svc")
    )
    second = make_allocation(organisation=parent, account="hold_1", cluster="leonardo", users=())
    services.allocation_suspend(allocation=second)
    exported, _ = allocations_to_json()

    Allocation.objects.all().delete()
    Organisation.objects.all().delete()
    report = allocations_import(json.loads(exported))

    assert report.ok and report.created == 2
    assert allocations_to_json()[0] == exported


def test_export_speaks_the_three_exchange_states_and_keeps_its_own_beside_them(reference_data):
    org = make_organisation(legal_name="Later Oy", registration_id="FI00000077")
    make_allocation(organisation=org, account="later_1")
    Allocation.objects.update(state=Allocation.State.SCHEDULED)
    closed = make_allocation(organisation=org, account="done_1", cluster="leonardo")
    Allocation.objects.filter(pk=closed.pk).update(state=Allocation.State.CLOSED)
    exported, _ = allocations_to_json()
    states = {
        item["account"]: (item["state"], item["lifecycle_state"])
        for item in json.loads(exported)["allocations"]
    }
    assert states == {"later_1": ("suspended", "scheduled"), "done_1": ("expired", "closed")}
    Allocation.objects.all().delete()
    assert allocations_import(json.loads(exported)).created == 2
    assert allocations_to_json()[0] == exported


def test_a_lifecycle_state_that_contradicts_the_state_is_refused(reference_data):
    report = allocations_import(
        {"allocations": [entry(state="active", lifecycle_state="scheduled")]}
    )
    assert not report.ok
    assert "scheduled contradicts state active" in str(report.errors)
    assert not Allocation.objects.exists()


def test_reimport_is_idempotent_and_updates_on_cluster_and_account(reference_data):
    allocations_import({"allocations": [ENTRY]})
    events = AllocationEvent.objects.count()

    again = allocations_import({"allocations": [ENTRY]})
    assert (again.created, again.updated, again.unchanged) == (0, 0, 1)
    assert AllocationEvent.objects.count() == events

    changed = allocations_import(
        {"allocations": [entry(gpu_hours=60000, state="suspended", users=["bob", "carol"])]}
    )
    assert (changed.created, changed.updated) == (0, 1)
    allocation = Allocation.objects.get()
    assert (allocation.gpu_hours, allocation.state) == (60000, "suspended")
    assert list(allocation.users.values_list("username", flat=True)) == ["bob", "carol"]
    event = allocation.events.last()
    assert (event.from_state, event.to_state) == ("active", "suspended")
    assert "gpu_hours" in event.reason and "users" in event.reason
    assert Organisation.objects.count() == 1


@pytest.mark.parametrize("account", ["ec110-guest", "ai.lab_2", "2024ai", "SCSG0001"])
def test_account_names_of_real_sites_import_and_export_back(reference_data, account):
    report = allocations_import({"allocations": [entry(account=account)]})

    assert report.ok, report.errors
    assert Allocation.objects.get().account == account
    content, _ = allocations_to_json()
    assert json.loads(content)["allocations"][0]["account"] == account


def test_reimport_matches_the_account_whatever_its_case(reference_data):
    allocations_import({"allocations": [entry(account="SCSG0001")]})

    again = allocations_import({"allocations": [entry(account="scsg0001")]})

    assert (again.created, again.updated) == (0, 1)
    assert Allocation.objects.get().account == "scsg0001"


def test_one_document_naming_an_account_twice_in_two_cases_is_refused(reference_data):
    report = allocations_import(
        {"allocations": [entry(account="SCSG0001"), entry(account="scsg0001")]}
    )

    assert (
        "allocations[1].account: 'scsg0001' on lumi is already in allocations[0]"
        in (report.errors[0])
    )


def test_import_attributes_usage_recorded_before(reference_data):
    from systems.models import Cluster

    UsageRecord.objects.create(
        cluster=Cluster.objects.get(name="lumi"), job_key="1", account="acme_llm", job_id="1",
        state="COMPLETED",
    )  # fmt: skip

    allocations_import({"allocations": [ENTRY]})

    assert UsageRecord.objects.get().allocation == Allocation.objects.get()


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ({"gpu_hours": 0}, "allocations[1].gpu_hours: must be a whole number above 0"),
        ({"gpu_hours": 1.5}, "allocations[1].gpu_hours: must be a whole number above 0"),
        ({"gpu_hours": True}, "allocations[1].gpu_hours: must be a whole number above 0"),
        ({"cluster": "atlantis"}, "allocations[1].cluster: 'atlantis' is not a known cluster"),
        ({"partition": "gpu"}, "allocations[1].partition: 'gpu' is not a partition of lumi"),
        ({"account": "acme,llm"}, "allocations[1].account: 'acme,llm' is not a valid Slurm"),
        ({"account": "root"}, "allocations[1].account: 'root' is not a valid Slurm"),
        ({"start": "2026-02-30"}, "allocations[1].start: '2026-02-30' is not a calendar date"),
        ({"end": "30.6.2026"}, "allocations[1].end: must be a date written YYYY-MM-DD"),
        ({"end": "2025-12-31"}, "allocations[1].end: must not be before start"),
        ({"state": "granted"}, "allocations[1].state: must be one of"),
        ({"users": ["ok", "Bad User"]}, "allocations[1].users[1]: 'Bad User' is not a valid"),
        ({"users": "alice"}, "allocations[1].users: must be a list"),
        ({"users": ["a", "a"]}, "allocations[1].users: a user is listed twice"),
        ({"project": " "}, "allocations[1].project: must not be empty"),
        ({"gpu_hour": 5}, "allocations[1].gpu_hour: unknown field"),
        ({"organisation": {"name": "X", "country": "fi", "registration_id": "1"}},
         "allocations[1].organisation.country: must be a two-letter code"),
    ],
)  # fmt: skip
def test_each_invalid_entry_is_reported_with_its_position_and_nothing_is_written(
    reference_data, overrides, message
):
    valid = entry(account="first_one")

    report = allocations_import({"allocations": [valid, entry(**overrides)]})

    assert report.errors and report.errors[0].startswith(message)
    assert not Allocation.objects.exists()
    assert not Organisation.objects.exists()


def test_missing_field_duplicate_account_and_conflicting_organisation_are_reported(
    reference_data,
):
    missing = entry(account="other")
    del missing["gpu_hours"]
    renamed = entry(account="third")
    renamed["organisation"]["name"] = "Acme Renamed"

    report = allocations_import({"allocations": [ENTRY, missing, ENTRY, renamed, "x"]})

    assert report.errors == [
        "allocations[1].gpu_hours: required",
        "allocations[2].account: 'acme_llm' on lumi is already in allocations[0]",
        "allocations[3].organisation: differs from allocations[0].organisation with the same "
        "registration_id and country",
        "allocations[4]: must be an object",
    ]


def test_document_without_an_allocations_list_is_refused(reference_data):
    assert allocations_import([ENTRY]).errors == [
        'allocations: the document must be {"allocations": [...]}'
    ]


# Command


def test_command_prints_a_summary(reference_data, tmp_path, capsys):
    path = tmp_path / "in.json"
    path.write_text(json.dumps({"allocations": [ENTRY]}))

    call_command("import_allocations", str(path))

    assert capsys.readouterr().out.strip() == (
        "created=1 updated=0 unchanged=0 organisations_created=1 organisations_updated=0"
    )


def test_command_reports_errors_on_stderr_and_fails(reference_data, tmp_path, capsys):
    path = tmp_path / "in.json"
    path.write_text(json.dumps({"allocations": [ENTRY, entry(account="x", gpu_hours=-1)]}))

    with pytest.raises(CommandError, match="1 invalid entry; nothing was imported"):
        call_command("import_allocations", str(path))

    assert "allocations[1].gpu_hours: must be a whole number above 0" in capsys.readouterr().err
    assert not Allocation.objects.exists()


@pytest.mark.parametrize(
    ("content", "message"), [("{nope", "not valid JSON at line 1 column 2"), (None, "Cannot read")]
)
def test_command_refuses_unreadable_input(reference_data, tmp_path, content, message):
    path = tmp_path / "in.json"
    if content is not None:
        path.write_text(content)

    with pytest.raises(CommandError, match=message):
        call_command("import_allocations", str(path))


def test_export_command_output_imports_back(reference_data, tmp_path, capsys):
    make_allocation(model_name="m")
    target = tmp_path / "all.json"
    call_command("export_allocations", "--format", "json", "-o", str(target))
    before = target.read_text()

    call_command("import_allocations", str(target))

    assert "unchanged=1" in capsys.readouterr().out
    assert allocations_to_json()[0] == before


def test_deeply_nested_json_is_refused_with_a_message(reference_data, tmp_path):
    from django.core.management.base import CommandError

    path = tmp_path / "nested.json"
    path.write_text('{"allocations": ' + "[" * 100_000 + "]" * 100_000 + "}")
    with pytest.raises(CommandError, match="nested too deeply"):
        call_command("import_allocations", str(path))
