"""The periodic threshold check: allocation use and training compute per allocation, declared
model and organisation group, the alerts it raises and the register of large training runs."""

from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta

from django.contrib.auth import get_user_model
from django.db import transaction
from django.db.models import Q
from django.urls import reverse
from django.utils import timezone
from simple_history.utils import bulk_create_with_history, bulk_update_with_history

from allocations.models import Allocation
from compliance.models import Alert, LargeRunEntry, Scope
from compliance.splitting import split_run_candidates
from compliance.thresholds import (
    SPLIT_RUN_LEVELS,
    SYSTEMIC_RISK,
    Level,
    allocation_levels,
    compute_levels,
    level_figure,
    levels_reached,
)
from core import roles
from core.mail import mail_each, site_url
from core.tasks import publish
from organisations.groups import organisation_groups_current
from organisations.models import Membership
from systems.estimates import SECONDS_PER_HOUR, grant_compute, significant
from systems.models import ThresholdPolicy
from usage.selectors import TERA, UsedCompute, allocations_used_compute

NO_USE = UsedCompute(0, 0.0, None)


# Art. 52(1): notify the Commission within two weeks.
NOTIFICATION_DAYS = 14


REMINDER_DAYS_BEFORE_DEADLINE = (7, 2)


# An alert still not e-mailed this long after it was raised lost its message: queue it again.
MAIL_LOST_AFTER = timedelta(minutes=10)


@dataclass
class Effort:
    """Compute of one subject: an allocation, a declared model or an organisation group."""

    scope: str
    subject: str
    subject_key: str
    used_flop: float = 0.0
    projected_flop: float = 0.0
    allocations: list[Allocation] = field(default_factory=list)

    def add(self, allocation: Allocation) -> None:
        self.used_flop += allocation.used_flop
        self.projected_flop += allocation.projected_flop
        self.allocations.append(allocation)


@dataclass
class CheckResult:
    policy: ThresholdPolicy | None
    alerts: list[Alert]
    exhausted: list[Allocation]
    register_opened: list[LargeRunEntry]
    reminders_sent: int


def allocation_figures(
    *,
    policy: ThresholdPolicy,
    now: datetime | None = None,
    held_by: Iterable[int] | None = None,
) -> list[Allocation]:
    """Every allocation with its used GPU-seconds, used share, used and projected FLOP, the
    accelerator memory of its largest job, and the GPU-seconds its jobs held from start to end
    up to `now` (`held_gpu_seconds`, for the footprint sweep: compliance.footprint), for the
    allocations of the organisations `held_by` (ids; all when None; 0 for the others).

    Two queries, whatever the number of allocations or usage records: the usage summed per
    allocation (usage.selectors.allocations_used_compute), then the allocations.
    """
    used_compute = allocations_used_compute(held_until=now or timezone.now(), held_by=held_by)
    allocations = list(
        Allocation.objects.select_related(
            "cluster", "partition", "organisation", "access_mode__call"
        ).order_by("pk")
    )
    for allocation in allocations:
        figures = used_compute.get(allocation.pk, NO_USE)
        used = allocation.used_gpu_seconds = figures.gpu_seconds
        allocation.used_peak_tflop_seconds = figures.peak_tflop_seconds
        allocation.largest_job_memory_gb = figures.largest_job_memory_gb
        allocation.held_gpu_seconds = figures.held_gpu_seconds or 0.0
        granted_seconds = allocation.gpu_hours * SECONDS_PER_HOUR
        allocation.used_share = used / granted_seconds if granted_seconds else 0.0
        allocation.used_flop, allocation.projected_flop = grant_compute(
            used_peak_flop=allocation.used_peak_tflop_seconds * TERA,
            used_gpu_seconds=used,
            granted_gpu_hours=allocation.gpu_hours,
            peak_flops=allocation.partition.peak_flops,
            utilisation=policy.default_utilisation,
            live=allocation.state in Allocation.LIVE_STATES,
        )
    return allocations


def efforts_by_model(
    allocations: list[Allocation], groups: dict[int, str] | None = None
) -> list[Effort]:
    """One effort per declared model *within one organisation group*: a company that declares
    another's model name does not add its compute to the other's subject. The effort is named
    as its first allocation (the lowest id) spells the model, whatever order the rows came in."""
    groups = organisation_groups_current().subjects if groups is None else groups
    efforts: dict[str, Effort] = {}
    for allocation in sorted(allocations, key=lambda allocation: allocation.pk):
        if not allocation.model_key:
            continue
        name = allocation.model_name.strip()
        key = f"{allocation.model_key}@{groups[allocation.organisation_id]}"
        efforts.setdefault(key, Effort(Scope.MODEL, name, key)).add(allocation)
    return list(efforts.values())


def efforts_by_organisation_group(
    allocations: list[Allocation], groups: dict[int, str] | None = None
) -> list[Effort]:
    groups = organisation_groups_current().subjects if groups is None else groups
    efforts: dict[str, Effort] = {}
    for allocation in allocations:
        subject = groups[allocation.organisation_id]
        efforts.setdefault(subject, Effort(Scope.ORGANISATION, subject, subject)).add(allocation)
    return list(efforts.values())


def _allocation_subject_key(allocation: Allocation, *, grant: bool = False) -> str:
    key = f"{allocation.cluster.name}:{allocation.account}"
    # Use alerts follow the grant: a top-up re-arms 75/90/100 % of the new amount.
    return f"{key}@{allocation.gpu_hours}" if grant else key


def thresholds_check(*, today: date | None = None) -> CheckResult:
    """Raise every alert newly reached, block exhausted allocations, keep the register current.

    Safe to run at any time and any number of times: an alert is raised once per level, scope,
    subject and policy version, and a new policy version does not repeat a level whose threshold
    it left unchanged.
    """
    today = today or timezone.localdate()
    policy = ThresholdPolicy.objects.in_force(today)
    if policy is None:
        return CheckResult(None, [], [], [], 0)
    with transaction.atomic():
        # Serialises concurrent checks: the policy row is the check's mutex.
        policy = ThresholdPolicy.objects.select_for_update().get(pk=policy.pk)
        now = timezone.now()
        groups = organisation_groups_current().subjects
        # Only the groups' footprints are swept: the others' held GPU-seconds go unread.
        allocations = allocation_figures(policy=policy, now=now, held_by=groups)
        model_efforts = efforts_by_model(allocations, groups)
        group_efforts = efforts_by_organisation_group(allocations, groups)
        candidates = _candidate_alerts(policy, allocations, model_efforts + group_efforts)
        candidates += split_run_candidates(
            policy=policy,
            allocations=allocations,
            model_efforts=model_efforts,
            group_efforts=group_efforts,
            today=today,
            now=now,
        )
        alerts = _new_alerts(candidates)
        exhausted = _block_exhausted(alerts)
        opened = _register_update(policy, model_efforts + group_efforts, today)
        _register_cite(alerts, opened)
        reminders = _register_reminders(today)
        unsent = Alert.objects.filter(
            Q(pk__in=[alert.pk for alert in alerts])
            | Q(raised_at__lt=timezone.now() - MAIL_LOST_AFTER),
            notified_at=None,
        )
        alert_ids = list(unsent.order_by("pk").values_list("pk", flat=True))
        if alert_ids:
            transaction.on_commit(lambda: _enqueue_notifications(alert_ids))
    return CheckResult(policy, alerts, exhausted, opened, reminders)


def _candidate_alerts(
    policy: ThresholdPolicy, allocations: list[Allocation], efforts: list[Effort]
) -> list[Alert]:
    share_levels = allocation_levels(policy.allocation_alert_percentages)
    flop_levels = compute_levels(policy.figures())
    by_key = {effort.subject_key: effort for effort in efforts}
    candidates = []

    def add(level: Level, scope: str, subject: str, key: str, value: float, allocation=None):
        candidates.append(
            Alert.candidate(
                policy=policy,
                level=level.name,
                threshold=level.threshold,
                scope=scope,
                subject=subject,
                subject_key=key,
                value=value,
                concerned=[allocation] if allocation else by_key[key].allocations,
                allocation=allocation,
            )
        )

    for allocation in allocations:
        grant_key = _allocation_subject_key(allocation, grant=True)
        for level in levels_reached(allocation.used_share, share_levels):
            add(
                level,
                Scope.ALLOCATION,
                allocation.account,
                grant_key,
                allocation.used_share,
                allocation,
            )
        key = _allocation_subject_key(allocation)
        for level in levels_reached(allocation.used_flop, flop_levels):
            add(level, Scope.ALLOCATION, allocation.account, key, allocation.used_flop, allocation)
    for effort in efforts:
        for level in levels_reached(effort.used_flop, flop_levels):
            add(level, effort.scope, effort.subject, effort.subject_key, effort.used_flop)
    return candidates


def _new_alerts(candidates: list[Alert]) -> list[Alert]:
    """Keep the candidates whose level the subject has never had, under any policy version.

    A new policy version therefore raises only levels a subject reaches for the first time
    (typically because a threshold moved), never a level it already had.
    """
    if not candidates:
        return []
    raised = set(
        Alert.objects.filter(subject_key__in={c.subject_key for c in candidates}).values_list(
            "level", "scope", "subject_key"
        )
    )
    fresh = [c for c in candidates if (c.level, c.scope, c.subject_key) not in raised]
    for alert in fresh:
        source = getattr(alert, "evidence_source", None)
        if source is not None:
            alert.evidence = source()
    return Alert.objects.bulk_create(fresh)


def _block_exhausted(alerts: list[Alert]) -> list[Allocation]:
    from allocations.services import allocations_mark_exhausted

    candidates: dict[int, Allocation] = {}
    reasons: dict[int, str] = {}
    for alert in alerts:
        allocation = alert.allocation
        if alert.scope != Scope.ALLOCATION or alert.level != "allocation_100":
            continue
        call = allocation.access_mode.call if allocation.access_mode_id else None
        if call is not None and not call.block_at_full_use:
            continue
        candidates[allocation.pk] = allocation
        reasons[allocation.pk] = (
            f"Grant fully used ({alert.value:.1%} of {allocation.gpu_hours:,} GPU-hours)."
        )
    marked = allocations_mark_exhausted(reasons=reasons)
    return [candidates[pk] for pk in marked]


def _method(policy: ThresholdPolicy) -> str:
    return (
        "hardware-based: scheduler GPU-seconds x partition peak dense BF16 FLOP/s x "
        f"utilisation {policy.default_utilisation:g}"
    )


def _register_update(policy: ThresholdPolicy, efforts: list[Effort], today: date):
    """Open the entries of efforts newly across a line, refresh the figures of the others and
    link each to its effort's allocations, in a fixed number of queries (history rows
    included) however many efforts cross."""
    existing = {
        (e.scope, e.subject_key, e.category): e
        for e in LargeRunEntry.objects.filter(
            subject_key__in={effort.subject_key for effort in efforts}
        ).prefetch_related("allocations")
    }
    opened, changed, relinked = [], [], []
    for effort in efforts:
        categories = []
        if effort.used_flop >= policy.gpai_flop:
            categories.append((LargeRunEntry.Category.GPAI, LargeRunEntry.Basis.USED))
        if effort.used_flop >= policy.systemic_risk_flop:
            categories.append((LargeRunEntry.Category.SYSTEMIC_RISK, LargeRunEntry.Basis.USED))
        elif effort.projected_flop >= policy.systemic_risk_flop:
            # Recital 112: compute is granted up front, so crossing is foreseeable.
            categories.append((LargeRunEntry.Category.SYSTEMIC_RISK, LargeRunEntry.Basis.PROJECTED))
        wanted = {a.pk for a in effort.allocations}
        for category, basis in categories:
            entry = existing.get((effort.scope, effort.subject_key, category))
            figure = significant(effort.used_flop if basis == "used" else effort.projected_flop)
            if entry is None:
                entry = LargeRunEntry(
                    scope=effort.scope,
                    subject=effort.subject,
                    subject_key=effort.subject_key,
                    category=category,
                    basis=basis,
                    compute_flop=figure,
                    projected_flop=significant(effort.projected_flop),
                    method=_method(policy),
                    policy=policy,
                    first_crossed_on=today,
                    notification_deadline=(
                        today + timedelta(days=NOTIFICATION_DAYS)
                        if category == LargeRunEntry.Category.SYSTEMIC_RISK
                        else None
                    ),
                )
                opened.append(entry)
                relinked.append((entry, wanted))
                continue
            if (entry.compute_flop, entry.projected_flop, entry.basis) != (
                figure,
                significant(effort.projected_flop),
                basis,
            ):
                entry.compute_flop = figure
                entry.projected_flop = significant(effort.projected_flop)
                entry.basis = basis
                entry.method = _method(policy)
                changed.append(entry)
            if {a.pk for a in entry.allocations.all()} != wanted:
                relinked.append((entry, wanted))
    now = timezone.now()
    for entry in [*opened, *changed]:
        entry.updated_at = now
    if opened:
        bulk_create_with_history(opened, LargeRunEntry, default_date=now)
    if changed:
        bulk_update_with_history(
            changed,
            LargeRunEntry,
            ["compute_flop", "projected_flop", "basis", "method", "updated_at"],
            default_date=now,
        )
    _register_link(relinked)
    return opened


def _register_link(relinked: list[tuple[LargeRunEntry, set[int]]]) -> None:
    """Set the allocations of each entry to exactly the ones given: two statements for all."""
    if not relinked:
        return
    Link = LargeRunEntry.allocations.through
    Link.objects.filter(largerunentry_id__in=[entry.pk for entry, _ in relinked]).delete()
    Link.objects.bulk_create(
        Link(largerunentry_id=entry.pk, allocation_id=allocation_id)
        for entry, wanted in relinked
        for allocation_id in sorted(wanted)
    )


def _register_cite(alerts: list[Alert], opened: list[LargeRunEntry]) -> None:
    """Register entries cite the split-run alerts of their subject and of their allocations:
    those just raised, and, for an entry just opened, those raised before. A citation removed
    by hand stays removed."""
    fresh = [alert for alert in alerts if alert.level in SPLIT_RUN_LEVELS]
    if not fresh and not opened:
        return
    entries = LargeRunEntry.objects.filter(
        Q(pk__in=[entry.pk for entry in opened])
        | Q(subject_key__in={alert.subject_key for alert in fresh})
        | Q(allocations__in={alert.allocation_id for alert in fresh if alert.allocation_id})
    ).prefetch_related("allocations")
    earlier = (
        list(
            Alert.objects.filter(level__in=SPLIT_RUN_LEVELS)
            .filter(
                Q(subject_key__in={entry.subject_key for entry in opened})
                | Q(allocation__register_entries__in=opened)
            )
            .distinct()
        )
        if opened
        else []
    )
    opened_ids = {entry.pk for entry in opened}
    Citation = LargeRunEntry.alerts.through
    citations = []
    for entry in entries.distinct():
        allocation_ids = {a.pk for a in entry.allocations.all()}
        candidates = [*fresh, *(earlier if entry.pk in opened_ids else [])]
        for alert in candidates:
            same_subject = (alert.scope, alert.subject_key) == (entry.scope, entry.subject_key)
            if same_subject or alert.allocation_id in allocation_ids:
                citations.append(Citation(largerunentry_id=entry.pk, alert_id=alert.pk))
    Citation.objects.bulk_create(citations, ignore_conflicts=True)


def _register_reminders(today: date) -> int:
    """Remind before the art. 52 deadline until the provider's notification is recorded."""
    sent = 0
    due = LargeRunEntry.objects.filter(
        category=SYSTEMIC_RISK, notified_on__isnull=True, notification_deadline__isnull=False
    )
    for entry in due:
        days_left = (entry.notification_deadline - today).days
        owed = sum(1 for d in REMINDER_DAYS_BEFORE_DEADLINE if days_left <= d)
        if owed > entry.reminders_sent:
            # counted as sent by the task once sent: a lost message is queued again next check
            entry_id = entry.pk
            transaction.on_commit(
                lambda entry_id=entry_id, owed=owed: _enqueue_reminder(entry_id, owed)
            )
            sent += 1
    return sent


def _enqueue_notifications(alert_ids: list[int]) -> None:
    from compliance.tasks import alerts_notify

    publish(alerts_notify, alert_ids)


def _enqueue_reminder(entry_id: int, owed: int) -> None:
    from compliance.tasks import large_run_reminder_send

    publish(large_run_reminder_send, entry_id, owed)


def _owner_emails(organisation_ids: list[int]) -> set[str]:
    users = get_user_model().objects.filter(
        membership__organisation_id__in=organisation_ids,
        membership__role=Membership.Role.OWNER,
        is_active=True,
    )
    return set(users.exclude(email="").values_list("email", flat=True))


def alert_staff_emails() -> set[str]:
    """Who on the staff is told of every alert: the call managers and the operators."""
    return _staff_emails(roles.CALL_MANAGER, roles.OPERATOR)


def _staff_emails(*role_names: str) -> set[str]:
    users = get_user_model().objects.filter(groups__name__in=role_names, is_active=True)
    return set(users.exclude(email="").values_list("email", flat=True))


def alert_acknowledge(*, alert: Alert, actor, note: str = "") -> bool:
    """Record who took note of an alert; False when someone already had."""
    return bool(
        alerts_acknowledge(alerts=Alert.objects.filter(pk=alert.pk), actor=actor, note=note)
    )


def alerts_acknowledge(*, alerts, actor, note: str = "") -> int:
    """Acknowledge the alerts nobody has yet, in one statement; returns how many."""
    return alerts.filter(acknowledged_at__isnull=True).update(
        acknowledged_by=actor, acknowledged_at=timezone.now(), acknowledgement_note=note
    )


def alert_notify(*, alert_id: int, staff: set[str] | None = None) -> int:
    """Send one alert's e-mail once, one message per person; returns the number of messages.

    Staff (call managers, operators) get a link to the alert in the admin, where they
    acknowledge it; the organisations' owners a link to the usage it is about. Nobody sees who
    else was told: a group alert reaches several companies.
    """
    alert = Alert.objects.select_related("policy").filter(pk=alert_id, notified_at=None).first()
    if alert is None:
        return 0
    if staff is None:
        staff = alert_staff_emails()
    owners = _owner_emails(alert.organisation_ids) - staff
    context = {
        "alert": alert,
        "value": level_figure(alert.level, alert.value),
        "threshold": level_figure(alert.level, alert.threshold),
    }
    staff_link = reverse("admin:compliance_alert_change", args=[alert.pk])
    sent = mail_each(
        "compliance/email/alert",
        {**context, "for_staff": True, "url": site_url(staff_link)},
        staff,
    )
    # A model or group figure that sums several organisations' allocations is theirs together:
    # an owner learns the level reached, never the others' compute.
    shared = len(set(alert.organisation_ids)) > 1
    owner_context = {**context, "url": site_url(_usage_link(alert))}
    if shared:
        owner_context["value"] = None
    sent += mail_each("compliance/email/alert", owner_context, owners)
    Alert.objects.filter(pk=alert.pk).update(notified_at=timezone.now())
    return sent


def _usage_link(alert: Alert) -> str:
    if alert.scope == Scope.ALLOCATION and alert.allocation_id:
        return reverse("usage:allocation", args=[alert.allocation_id])
    if alert.scope == Scope.MODEL:
        return reverse("usage:model", args=[alert.subject])
    return reverse("allocations:list")


def large_run_reminder(*, entry_id: int, owed: int) -> int:
    """Send the `owed`-th reminder of an art. 52 deadline, unless it went out already: staff get
    a link to the register entry, where the notification date is recorded, the owners a link
    to the usage it is about."""
    entry = LargeRunEntry.objects.filter(
        pk=entry_id, notified_on=None, reminders_sent__lt=owed
    ).first()
    if entry is None:
        return 0
    organisation_ids = list(entry.allocations.values_list("organisation_id", flat=True))
    staff = _staff_emails(roles.CALL_MANAGER, roles.OPERATOR, roles.GOVERNANCE_OFFICER)
    owners = _owner_emails(organisation_ids) - staff
    entry_link = reverse("admin:compliance_largerunentry_change", args=[entry.pk])
    if entry.scope == Scope.MODEL:
        usage_link = reverse("usage:model", args=[entry.subject])
    else:
        usage_link = reverse("allocations:list")
    context = {"entry": entry}
    sent = mail_each(
        "compliance/email/reminder",
        {**context, "for_staff": True, "url": site_url(entry_link)},
        staff,
    )
    sent += mail_each("compliance/email/reminder", {**context, "url": site_url(usage_link)}, owners)
    LargeRunEntry.objects.filter(pk=entry.pk).update(reminders_sent=owed)
    return sent
