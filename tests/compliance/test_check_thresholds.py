import re
from datetime import date, timedelta
from io import StringIO

import pytest
from django.conf import settings
from django.core import mail
from django.core.management import call_command
from django.db import connection
from django.test.utils import CaptureQueriesContext

from allocations.models import Allocation
from compliance.models import Alert, LargeRunEntry
from compliance.monitoring import alert_acknowledge, thresholds_check
from systems.models import Cluster, Partition, ThresholdPolicy
from tests.factories import make_allocation, make_organisation, make_usage_record

TODAY = date(2026, 3, 1)
LINE = re.compile(
    r"^alert level=(\S+) scope=(allocation|model|organisation) subject=(\S+) "
    r"value=(\S+) threshold=(\S+)$"
)


def seconds_for(flop: float, cluster: str, utilisation: float = 0.4) -> int:
    peak = Partition.objects.get(cluster__name=cluster).peak_flops
    return round(flop / (peak * utilisation))


def check(**kwargs) -> list[tuple[str, str, str]]:
    out = StringIO()
    call_command(
        "check_thresholds", "--date", (kwargs.get("today") or TODAY).isoformat(), stdout=out
    )
    lines = out.getvalue().splitlines()
    assert lines[-1] == f"alerts={len(lines) - 1}"
    parsed = []
    for line in lines[:-1]:
        match = LINE.match(line)
        assert match, line
        parsed.append(match.groups()[:3])
    return parsed


@pytest.fixture
def split_model(reference_data):
    """One model, two systems, two companies of one group: each part 0.6e23, together 1.2e23."""
    parent = make_organisation(registration_id="DE-PARENT-1")
    child = make_organisation(registration_id="FI-CHILD-2", controlled_by="DE-PARENT-1")
    leo = make_allocation(
        organisation=parent,
        cluster="leonardo",
        account="parent_llm",
        gpu_hours=400_000,
        model_name="north-13b",
    )
    mn5 = make_allocation(
        organisation=child,
        cluster="marenostrum5",
        account="child_llm",
        gpu_hours=150_000,
        model_name="north-13b",
    )
    make_usage_record(allocation=leo, gpu_seconds=seconds_for(0.6e23, "leonardo"))
    make_usage_record(allocation=mn5, gpu_seconds=seconds_for(0.6e23, "marenostrum5"))
    return leo, mn5


def test_split_training_raises_gpai_for_model_and_group_not_for_either_allocation(split_model):
    raised = check()
    gpai = {(scope, subject) for level, scope, subject in raised if level == "gpai"}
    assert gpai == {("model", "north-13b"), ("organisation", "DE-PARENT-1")}
    warnings = {(scope, subject) for level, scope, subject in raised if level == "gpai_warning"}
    assert ("allocation", "parent_llm") in warnings
    assert ("allocation", "child_llm") in warnings


def test_second_run_without_new_usage_raises_nothing(split_model, capsys):
    assert check()
    out = StringIO()
    call_command("check_thresholds", "--date", TODAY.isoformat(), stdout=out)
    assert out.getvalue().splitlines() == ["alerts=0"]


def test_new_usage_raises_only_the_newly_reached_level(split_model):
    leo, _ = split_model
    check()
    make_usage_record(allocation=leo, gpu_seconds=seconds_for(0.1e23, "leonardo"))
    assert check() == []
    make_usage_record(allocation=leo, gpu_seconds=seconds_for(9e24, "leonardo"))
    raised = check()
    assert ("systemic_risk_warning", "allocation", "parent_llm") in raised
    assert ("systemic_risk_warning", "model", "north-13b") in raised
    assert ("gpai", "allocation", "parent_llm") in raised
    assert ("gpai", "model", "north-13b") not in raised
    assert ("gpai", "organisation", "DE-PARENT-1") not in raised


@pytest.mark.parametrize(
    ("used_share", "expected"),
    [
        (0.74, []),
        (0.75, ["allocation_75"]),
        (0.95, ["allocation_75", "allocation_90"]),
        (1.0, ["allocation_75", "allocation_90", "allocation_100"]),
    ],
)
def test_allocation_share_levels(reference_data, used_share, expected):
    a = make_allocation(
        organisation=make_organisation(registration_id="FI-1"),
        cluster="vega",
        account="small_one",
        gpu_hours=1_000,
    )
    make_usage_record(allocation=a, gpu_seconds=round(1_000 * 3600 * used_share))
    levels = [level for level, scope, _ in check() if scope == "allocation"]
    assert levels == expected


def test_full_use_blocks_the_allocation_when_the_call_says_so(reference_data, open_call):
    mode = open_call.access_modes.first()
    a = make_allocation(
        organisation=make_organisation(registration_id="FI-1"),
        cluster="vega",
        account="used_up",
        gpu_hours=100,
        access_mode=mode,
    )
    make_usage_record(allocation=a, gpu_seconds=100 * 3600)
    check()
    a.refresh_from_db()
    assert a.exhausted_at is not None
    assert a.is_blocked
    assert a.events.filter(action="exhausted").exists()


def test_full_use_does_not_block_when_the_call_allows_overuse(reference_data, open_call):
    open_call.block_at_full_use = False
    open_call.save()
    a = make_allocation(
        organisation=make_organisation(registration_id="FI-1"),
        cluster="vega",
        account="overuse_ok",
        gpu_hours=100,
        access_mode=open_call.access_modes.first(),
    )
    make_usage_record(allocation=a, gpu_seconds=120 * 3600)
    assert ("allocation_100", "allocation", "overuse_ok") in check()
    a.refresh_from_db()
    assert a.exhausted_at is None


def test_a_top_up_rearms_the_use_alerts_of_the_new_grant(reference_data):
    a = make_allocation(
        organisation=make_organisation(registration_id="FI-1"),
        cluster="vega",
        account="topped",
        gpu_hours=100,
    )
    make_usage_record(allocation=a, gpu_seconds=80 * 3600)
    assert [lv for lv, _, _ in check()] == ["allocation_75"]
    Allocation.objects.filter(pk=a.pk).update(gpu_hours=200)
    assert check() == []
    make_usage_record(allocation=a, gpu_seconds=80 * 3600)
    assert [lv for lv, _, _ in check()] == ["allocation_75"]


def test_a_new_policy_raises_only_levels_reached_for_the_first_time(split_model):
    first = check()
    assert ("gpai", "allocation", "parent_llm") not in first
    ThresholdPolicy.objects.create(
        version=2,
        effective_from=TODAY,
        gpai_flop=5e22,
        systemic_risk_flop=1e25,
        allocation_alert_percentages=[75, 90, 100],
    )
    raised = check()
    assert sorted(raised) == [
        ("gpai", "allocation", "child_llm"),
        ("gpai", "allocation", "parent_llm"),
    ]
    assert Alert.objects.filter(level="gpai", policy__version=2).count() == 2


def test_a_policy_dated_in_the_future_is_not_applied_yet(split_model):
    ThresholdPolicy.objects.create(
        version=2,
        effective_from=TODAY + timedelta(days=1),
        gpai_flop=5e22,
        allocation_alert_percentages=[75, 90, 100],
    )
    raised = check()
    assert ("gpai", "allocation", "parent_llm") not in raised
    assert ("gpai", "allocation", "parent_llm") in check(today=TODAY + timedelta(days=1))


def test_organisations_sharing_a_member_are_summed_as_one_group(reference_data, applicant):
    a = make_allocation(
        organisation=make_organisation(registration_id="FI-A", owner=applicant),
        cluster="jupiter",
        account="acct_a",
        gpu_hours=100_000,
        model_name="a",
    )
    b = make_allocation(
        organisation=make_organisation(registration_id="SE-B", owner=applicant),
        cluster="lumi",
        account="acct_b",
        gpu_hours=400_000,
        model_name="b",
    )
    make_usage_record(allocation=a, gpu_seconds=seconds_for(0.6e23, "jupiter"))
    make_usage_record(allocation=b, gpu_seconds=seconds_for(0.6e23, "lumi"))
    raised = check()
    assert ("gpai", "organisation", "FI-A") in raised
    assert not any(level == "gpai" and scope == "model" for level, scope, _ in raised)


def test_projected_systemic_risk_opens_a_register_entry_with_the_14_day_clock(
    reference_data, applicant, governance_officer, django_capture_on_commit_callbacks
):
    org = make_organisation(registration_id="FR-BIG-1", owner=applicant)
    a = make_allocation(
        organisation=org,
        cluster="jupiter",
        account="big_run",
        gpu_hours=8_000_000,
        model_name="frontier-400b",
    )
    make_usage_record(allocation=a, gpu_seconds=seconds_for(2e23, "jupiter"))
    check()
    entry = LargeRunEntry.objects.get(scope="model", category="systemic_risk")
    assert entry.basis == "projected"
    assert entry.first_crossed_on == TODAY
    assert entry.notification_deadline == TODAY + timedelta(days=14)
    assert list(entry.allocations.all()) == [a]
    assert LargeRunEntry.objects.filter(scope="model", category="gpai").count() == 1
    mail.outbox.clear()

    with django_capture_on_commit_callbacks(execute=True):
        check(today=TODAY + timedelta(days=6))
    assert mail.outbox == []
    with django_capture_on_commit_callbacks(execute=True):
        check(today=TODAY + timedelta(days=7))
    reminders = [m for m in mail.outbox if "Art. 52" in m.subject]
    # model entry and organisation-group entry, each to the owner and the governance officer
    assert sorted(m.to for m in reminders) == sorted(
        [[applicant.email], [governance_officer.email]] * 2
    )
    to_officer = next(m for m in reminders if m.to == [governance_officer.email])
    assert f"{settings.SITE_URL}/admin/compliance/largerunentry/" in to_officer.body
    to_owner = next(m for m in reminders if m.to == [applicant.email] and "model" in m.body)
    assert f"{settings.SITE_URL}/usage/models/frontier-400b/" in to_owner.body
    assert "/admin/" not in to_owner.body
    with django_capture_on_commit_callbacks(execute=True):
        check(today=TODAY + timedelta(days=8))
    assert len([m for m in mail.outbox if "Art. 52" in m.subject]) == 4

    LargeRunEntry.objects.update(notified_on=TODAY + timedelta(days=9))
    with django_capture_on_commit_callbacks(execute=True):
        check(today=TODAY + timedelta(days=12))
    assert len([m for m in mail.outbox if "Art. 52" in m.subject]) == 4


def test_register_figures_follow_usage_to_two_significant_figures(split_model):
    check()
    entry = LargeRunEntry.objects.get(scope="model", subject="north-13b", category="gpai")
    assert entry.compute_flop == pytest.approx(1.2e23)
    assert entry.basis == "used"
    leo, _ = split_model
    make_usage_record(allocation=leo, gpu_seconds=seconds_for(0.21e23, "leonardo"))
    check()
    entry.refresh_from_db()
    assert entry.compute_flop == 1.4e23


def test_alerts_are_mailed_to_owners_call_managers_and_operators(
    reference_data,
    applicant,
    other_applicant,
    call_manager,
    operator,
    django_capture_on_commit_callbacks,
):
    a = make_allocation(
        organisation=make_organisation(registration_id="FI-1", owner=applicant),
        cluster="vega",
        account="mailme",
        gpu_hours=100,
    )
    make_organisation(registration_id="FI-2", owner=other_applicant)
    make_usage_record(allocation=a, gpu_seconds=76 * 3600)
    with django_capture_on_commit_callbacks(execute=True):
        check()
    alert = Alert.objects.get()
    messages = {message.to[0]: message for message in mail.outbox}
    assert [len(message.to) for message in mail.outbox] == [1, 1, 1]  # nobody sees the others
    assert set(messages) == {applicant.email, call_manager.email, operator.email}
    assert all("allocation_75" in message.subject for message in mail.outbox)
    admin_link = f"{settings.SITE_URL}/admin/compliance/alert/{alert.pk}/change/"
    assert admin_link in messages[operator.email].body
    assert admin_link in messages[call_manager.email].body
    owner_mail = messages[applicant.email].body
    assert f"{settings.SITE_URL}/usage/allocations/{a.pk}/" in owner_mail
    assert "/admin/" not in owner_mail and "Acknowledge" not in owner_mail
    assert alert.notified_at is not None


def test_alert_mail_lost_with_the_broker_goes_out_with_a_later_check_once(
    reference_data, applicant, django_capture_on_commit_callbacks, monkeypatch, broker_down
):
    from compliance import tasks
    from compliance.monitoring import MAIL_LOST_AFTER

    a = make_allocation(
        organisation=make_organisation(registration_id="FI-1", owner=applicant),
        cluster="vega",
        account="lostmail",
        gpu_hours=100,
    )
    make_usage_record(allocation=a, gpu_seconds=76 * 3600)
    broker_down(tasks.alerts_notify)
    with django_capture_on_commit_callbacks(execute=True):
        assert check() == [("allocation_75", "allocation", "lostmail")]  # the check still ends
    assert mail.outbox == [] and Alert.objects.get().notified_at is None
    monkeypatch.undo()
    with django_capture_on_commit_callbacks(execute=True):
        check()
    assert mail.outbox == []  # raised moments ago: its own message may still be on the way
    Alert.objects.update(raised_at=Alert.objects.get().raised_at - MAIL_LOST_AFTER * 2)
    with django_capture_on_commit_callbacks(execute=True):
        assert check() == []
    assert [m.to for m in mail.outbox] == [[applicant.email]]
    with django_capture_on_commit_callbacks(execute=True):
        check()
    assert len(mail.outbox) == 1


def test_a_reminder_lost_with_the_broker_goes_out_with_the_next_check_once(
    reference_data,
    governance_officer,
    django_capture_on_commit_callbacks,
    monkeypatch,
    broker_down,
):
    from compliance import tasks

    a = make_allocation(
        organisation=make_organisation(registration_id="FR-BIG-2"),
        cluster="jupiter",
        account="big_run2",
        gpu_hours=8_000_000,
        model_name="huge-1",
    )
    make_usage_record(allocation=a, gpu_seconds=seconds_for(2e23, "jupiter"))
    check()
    mail.outbox.clear()
    broker_down(tasks.large_run_reminder_send)
    with django_capture_on_commit_callbacks(execute=True):
        check(today=TODAY + timedelta(days=7))
    assert mail.outbox == []
    monkeypatch.undo()
    with django_capture_on_commit_callbacks(execute=True):
        check(today=TODAY + timedelta(days=7))
    assert (
        sorted(m.to[0] for m in mail.outbox if "Art. 52" in m.subject)
        == [governance_officer.email] * 2
    )  # the model's entry and the organisation group's
    assert set(
        LargeRunEntry.objects.filter(category="systemic_risk").values_list(
            "reminders_sent", flat=True
        )
    ) == {1}
    with django_capture_on_commit_callbacks(execute=True):
        check(today=TODAY + timedelta(days=8))
    assert len([m for m in mail.outbox if "Art. 52" in m.subject]) == 2


def test_owners_learn_a_shared_level_but_never_the_other_companys_compute(
    reference_data, applicant, other_applicant, operator, django_capture_on_commit_callbacks
):
    parent = make_organisation(registration_id="DE-PARENT-9", owner=applicant)
    child = make_organisation(
        registration_id="FI-CHILD-9", controlled_by="DE-PARENT-9", owner=other_applicant
    )
    leo = make_allocation(
        organisation=parent,
        cluster="leonardo",
        account="parent_9",
        gpu_hours=400_000,
        model_name="south-13b",
    )
    mn5 = make_allocation(
        organisation=child,
        cluster="marenostrum5",
        account="child_9",
        gpu_hours=150_000,
        model_name="south-13b",
    )
    make_usage_record(allocation=leo, gpu_seconds=seconds_for(0.6e23, "leonardo"))
    make_usage_record(allocation=mn5, gpu_seconds=seconds_for(0.6e23, "marenostrum5"))
    with django_capture_on_commit_callbacks(execute=True):
        check()
    model_gpai = [
        m for m in mail.outbox if m.subject.endswith("] gpai for declared model south-13b")
    ]
    bodies = {m.to[0]: m.body for m in model_gpai}
    assert set(bodies) == {applicant.email, other_applicant.email, operator.email}
    assert "1.2 × 10²³ FLOP" in bodies[operator.email]
    for owner in (applicant.email, other_applicant.email):
        assert "10²³ FLOP" not in bodies[owner].split("Threshold:")[0]
        assert "several organisations' allocations together" in bodies[owner]
    own = next(m for m in mail.outbox if m.to == [applicant.email] and "parent_9" in m.subject)
    assert "10²² FLOP" in own.body  # an allocation's own figure is the owner's to see


def test_acknowledging_records_who_and_why_once(split_model, operator):
    check()
    alert = Alert.objects.first()
    assert alert_acknowledge(alert=alert, actor=operator, note="Talked to the founder.")
    assert not alert_acknowledge(alert=alert, actor=operator, note="again")
    alert.refresh_from_db()
    assert (alert.acknowledged_by, alert.acknowledgement_note) == (
        operator,
        "Talked to the founder.",
    )


def test_query_count_does_not_grow_with_allocations(reference_data):
    org = make_organisation(registration_id="FI-Q")
    for i in range(5):
        make_usage_record(
            allocation=make_allocation(
                organisation=org,
                cluster="vega",
                account=f"q{i}",
                gpu_hours=1_000,
                model_name=f"m{i}",
            ),
            gpu_seconds=800 * 3600,
        )
    thresholds_check(today=TODAY)
    with CaptureQueriesContext(connection) as few:
        thresholds_check(today=TODAY)
    for i in range(5, 40):
        make_usage_record(
            allocation=make_allocation(
                organisation=org,
                cluster="lumi",
                account=f"q{i}",
                gpu_hours=1_000,
                model_name=f"m{i}",
            ),
            gpu_seconds=10,
        )
    with CaptureQueriesContext(connection) as many:
        thresholds_check(today=TODAY)
    assert len(many) == len(few)


def test_without_a_policy_in_force_the_command_says_so(db):
    from django.core.management import CommandError

    with pytest.raises(CommandError, match="No threshold policy"):
        call_command("check_thresholds", stdout=StringIO())


def test_the_celery_task_runs_the_same_check(split_model):
    from compliance.tasks import thresholds_check as task

    assert Cluster.objects.exists()
    result = task.apply().get()
    assert result.startswith("alerts=")
    assert Alert.objects.filter(level="gpai", scope="model").exists()


def test_the_hourly_task_skips_while_another_check_holds_the_lock(split_model):
    from compliance.tasks import thresholds_check as task
    from core.locks import task_lock

    with task_lock("thresholds_check", timeout=60) as held:
        assert held
        assert task.apply().get() == "skipped: another thresholds_check run is in progress"
        assert not Alert.objects.exists()

    # Once the other run is over, the next hour's check does its work.
    assert task.apply().get().startswith("alerts=")
    assert Alert.objects.filter(level="gpai", scope="model").exists()


def test_an_exhausted_allocation_is_blocked_by_the_next_commands_export(reference_data):
    from allocations.exports import export_create

    a = make_allocation(
        organisation=make_organisation(registration_id="FI-1"),
        cluster="vega",
        account="burnt",
        gpu_hours=100,
    )
    other = make_allocation(
        organisation=make_organisation(registration_id="FI-2"),
        cluster="vega",
        account="still_fine",
        gpu_hours=100,
    )
    export_create(fmt="commands", cluster=a.cluster)
    make_usage_record(allocation=a, gpu_seconds=100 * 3600)
    make_usage_record(allocation=other, gpu_seconds=10 * 3600)
    check()
    commands = export_create(fmt="commands", cluster=a.cluster).content
    blocking = [line for line in commands.splitlines() if "GrpSubmitJobs=0" in line]
    assert blocking == [
        "sacctmgr -i modify account where name=burnt cluster=vega set GrpSubmitJobs=0"
    ]


def _exhaust(org, accounts: range) -> None:
    for i in accounts:
        make_usage_record(
            allocation=make_allocation(
                organisation=org, cluster="vega", account=f"x{i}", gpu_hours=1_000
            ),
            gpu_seconds=1_100 * 3600,
        )


def test_query_count_does_not_grow_with_the_allocations_that_cross_a_level(reference_data):
    org = make_organisation(registration_id="FI-X")
    _exhaust(org, range(2))
    with CaptureQueriesContext(connection) as few:
        thresholds_check(today=TODAY)
    _exhaust(org, range(2, 20))
    with CaptureQueriesContext(connection) as many:
        result = thresholds_check(today=TODAY)

    assert len(result.exhausted) == 18
    assert Allocation.objects.filter(exhausted_at__isnull=False).count() == 20
    assert len(many) == len(few)


def test_a_model_name_counts_within_its_organisation_group_only(reference_data):
    """Two unrelated companies declaring the same model name: neither adds its compute to the
    other's model, so 0.6e23 + 0.6e23 raises no model alert."""
    first = make_organisation(registration_id="FI-FIRST-1")
    second = make_organisation(registration_id="SE-OTHER-2")
    for organisation, cluster, account in (
        (first, "leonardo", "first_llm"),
        (second, "marenostrum5", "other_llm"),
    ):
        allocation = make_allocation(
            organisation=organisation,
            cluster=cluster,
            account=account,
            gpu_hours=400_000,
            model_name="North-13B",
        )
        make_usage_record(allocation=allocation, gpu_seconds=seconds_for(0.6e23, cluster))
    raised = check()
    assert ("gpai", "model", "North-13B") not in raised
    subjects = set(Alert.objects.filter(scope="model").values_list("subject_key", flat=True))
    assert len(subjects) == 2  # one warning per company's own model
