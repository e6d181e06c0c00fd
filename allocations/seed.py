"""Reference data (DOMAIN.md systems table, the default threshold policy) and the demo call."""

from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal

from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group
from django.utils import timezone

from . import roles
from .models import AccessMode, AccessModePartition, Call, Cluster, Partition, Site, ThresholdPolicy

DEMO_PASSWORD = "hpcgate-demo"


@dataclass(frozen=True)
class SystemRow:
    site: str
    country: str
    time_zone: str
    pue: str
    grid: str
    cluster: str
    display_name: str
    partition: str
    accelerator: str
    gpus_per_node: int
    nodes: int
    peak_tflops: str
    power_watts: int


# PUE and grid intensity are starting values for each site to replace with its own figures.
SYSTEMS = (
    SystemRow(
        "CSC LUMI data centre, Kajaani",
        "FI",
        "Europe/Helsinki",
        "1.10",
        "0.0200",
        "lumi",
        "LUMI",
        "standard-g",
        "AMD MI250X, counted per GCD",
        8,
        2978,
        "191.50",
        280,
    ),
    SystemRow(
        "CINECA, Bologna",
        "IT",
        "Europe/Rome",
        "1.10",
        "0.2500",
        "leonardo",
        "Leonardo",
        "boost_usr_prod",
        "NVIDIA A100 64 GB",
        4,
        3456,
        "312.00",
        400,
    ),
    SystemRow(
        "Barcelona Supercomputing Center",
        "ES",
        "Europe/Madrid",
        "1.08",
        "0.1500",
        "marenostrum5",
        "MareNostrum 5",
        "acc",
        "NVIDIA H100 64 GB",
        4,
        1120,
        "989.00",
        700,
    ),
    SystemRow(
        "Jülich Supercomputing Centre",
        "DE",
        "Europe/Berlin",
        "1.10",
        "0.3500",
        "jupiter",
        "JUPITER",
        "booster",
        "NVIDIA GH200",
        4,
        5900,
        "989.00",
        700,
    ),
    SystemRow(
        "IZUM, Maribor",
        "SI",
        "Europe/Ljubljana",
        "1.20",
        "0.2500",
        "vega",
        "Vega",
        "gpu",
        "NVIDIA A100 40 GB",
        4,
        60,
        "312.00",
        400,
    ),
    SystemRow(
        "LuxProvide, Bissen",
        "LU",
        "Europe/Luxembourg",
        "1.20",
        "0.0800",
        "meluxina",
        "MeluXina",
        "gpu",
        "NVIDIA A100 40 GB",
        4,
        200,
        "312.00",
        400,
    ),
)

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


def reference_data_seed() -> dict[str, int]:
    """Sites, clusters, partitions, eligible countries and the first threshold policy.

    Safe to run again.
    """
    from organisations.countries import countries_ensure

    countries_ensure()
    partitions = 0
    for row in SYSTEMS:
        site, _ = Site.objects.get_or_create(
            name=row.site,
            defaults={
                "country": row.country,
                "time_zone": row.time_zone,
                "pue": Decimal(row.pue),
                "grid_kg_co2e_per_kwh": Decimal(row.grid),
            },
        )
        cluster, _ = Cluster.objects.get_or_create(
            name=row.cluster, defaults={"site": site, "display_name": row.display_name}
        )
        Partition.objects.get_or_create(
            cluster=cluster,
            name=row.partition,
            defaults={
                "accelerator": row.accelerator,
                "gpus_per_node": row.gpus_per_node,
                "nodes": row.nodes,
                "peak_tflops": Decimal(row.peak_tflops),
                "power_watts": row.power_watts,
            },
        )
        partitions += 1
    ThresholdPolicy.objects.get_or_create(
        version=1,
        defaults={
            # GPAI obligations of the AI Act apply from 2 August 2025.
            "effective_from": date(2025, 8, 2),
            "gpai_flop": 1e23,
            "systemic_risk_flop": 1e25,
            "modification_share": 1 / 3,
            "warning_share": 0.5,
            "default_utilisation": 0.4,
            "allocation_alert_percentages": [75, 90, 100],
            "note": (
                "AI Act (EU) 2024/1689 art. 51(2): 10^25 FLOP; Commission guidelines "
                "C(2025) 5045: indicative GPAI criterion 10^23 FLOP, one-third rule for "
                "modifications."
            ),
        },
    )
    return {"partitions": partitions}


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


def role_members(role: str) -> list[str]:
    return list(Group.objects.get(name=role).user_set.values_list("username", flat=True))


def demo_extras_seed() -> list[str]:
    """Demo organisations, applications and allocations from the other parts of the product."""
    from allocations.demo import demo_allocations_seed
    from vetting.demo_review import demo_reviews_seed
    from vetting.seed import demo_applications_seed

    return [*demo_applications_seed(), *demo_allocations_seed(), *demo_reviews_seed()]
