"""Reference data (the reference systems, the default threshold policy) and the demo call."""

from datetime import UTC, datetime, timedelta

from django.contrib.auth import get_user_model
from django.utils import timezone

from core import roles
from systems.models import AccessMode, AccessModePartition, Call, Partition

DEMO_PASSWORD = "hpcgate-demo"


DEMO_CALL_SLUG = "ai-factories-startups"


ACCESS_MODES = (
    # kind, min, max, durations, decision days, capacity per partition, description
    (
        AccessMode.Kind.PLAYGROUND,
        0,
        5_000,
        [1, 2, 3],
        2,
        50_000,
        "Small entry-level allocations to try a system, port code and test scaling.",
    ),
    (
        AccessMode.Kind.FAST_LANE,
        0,
        50_000,
        [1, 2, 3],
        4,
        400_000,
        "Up to 50,000 GPU-hours for fine-tuning, inference at scale and mid-sized training.",
    ),
    (
        AccessMode.Kind.LARGE_SCALE,
        50_001,
        None,
        [3, 6, 12],
        10,
        3_000_000,
        "More than 50,000 GPU-hours for large training runs; decided after each cut-off.",
    ),
)


DEMO_USERS = (
    # username, e-mail, first name, last name, role, staff
    ("applicant", "founder@aurora-ai.example", "Aino", "Virtanen", None, False),
    ("applicant2", "cto@lince-labs.example", "Lucía", "Martín", None, False),
    ("reviewer", "reviewer@tu-example.example", "Rui", "Almeida", roles.REVIEWER, True),
    ("reviewer2", "reviewer2@uni-example.example", "Katrin", "Berg", roles.REVIEWER, True),
    ("manager", "calls@hpcgate-site.example", "Marta", "Novak", roles.CALL_MANAGER, True),
    ("operator", "ops@hpcgate-site.example", "Olli", "Koski", roles.OPERATOR, True),
    (
        "governance",
        "governance@hpcgate-site.example",
        "Greta",
        "Lind",
        roles.GOVERNANCE_OFFICER,
        True,
    ),
)


def demo_call_seed() -> Call:
    now = timezone.now()
    call, created = Call.objects.get_or_create(
        slug=DEMO_CALL_SLUG,
        defaults={
            "title": "AI Factories: access for AI startups and SMEs",
            "description": (
                "Continuous call for European AI startups and SMEs. Playground and Fast Lane "
                "requests are decided on a rolling basis; Large Scale requests after each cut-off."
            ),
            "opens_at": now.replace(hour=0, minute=0, second=0, microsecond=0) - timedelta(days=30),
            "closes_at": None,
            "state": Call.State.OPEN,
        },
    )
    partitions = list(Partition.objects.all())
    cutoff = datetime.combine(now.date() + timedelta(days=45), datetime.min.time(), UTC)
    for kind, minimum, maximum, durations, days, capacity, description in ACCESS_MODES:
        mode, mode_created = AccessMode.objects.get_or_create(
            call=call,
            kind=kind,
            defaults={
                "min_gpu_hours": minimum,
                "max_gpu_hours": maximum,
                "durations_months": durations,
                "decision_working_days": days,
                "description": description,
                "cutoff_at": cutoff if kind == AccessMode.Kind.LARGE_SCALE else None,
            },
        )
        if mode_created:
            AccessModePartition.objects.bulk_create(
                AccessModePartition(access_mode=mode, partition=p, capacity_gpu_hours=capacity)
                for p in partitions
            )
    return call


def demo_users_seed() -> list[str]:
    from allauth.account.models import EmailAddress

    User = get_user_model()
    groups = roles.roles_ensure()
    names = []
    for username, email, first, last, role, staff in DEMO_USERS:
        user, created = User.objects.get_or_create(
            username=username,
            defaults={"email": email, "first_name": first, "last_name": last, "is_staff": staff},
        )
        if created:
            user.set_password(DEMO_PASSWORD)
            user.save(update_fields=["password"])
        if role:
            user.groups.add(groups[role])
        EmailAddress.objects.get_or_create(
            user=user, email=user.email, defaults={"verified": True, "primary": True}
        )
        names.append(username)
    return names


def demo_extras_seed() -> list[str]:
    """Demo organisations, applications and allocations from the other parts of the product."""
    from demo.allocations import demo_allocations_seed
    from demo.applications import demo_applications_seed
    from demo.reviews import demo_reviews_seed

    return [*demo_applications_seed(), *demo_allocations_seed(), *demo_reviews_seed()]
