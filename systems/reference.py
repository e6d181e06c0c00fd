from dataclasses import dataclass
from datetime import date
from decimal import Decimal

from systems.models import (
    Cluster,
    Partition,
    Site,
    ThresholdPolicy,
)


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
    memory_gb: int


# PUE and grid intensity are starting values for each site to replace with its own figures.
# Memory is per scheduler GPU, like peak and power: a LUMI-G GCD has half an MI250X's 128 GB.
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
        64,
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
        64,
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
        64,
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
        96,
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
        40,
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
        40,
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
        partition, _ = Partition.objects.get_or_create(
            cluster=cluster,
            name=row.partition,
            defaults={
                "accelerator": row.accelerator,
                "gpus_per_node": row.gpus_per_node,
                "nodes": row.nodes,
                "peak_tflops": Decimal(row.peak_tflops),
                "power_watts": row.power_watts,
                "memory_gb_per_gpu": row.memory_gb,
            },
        )
        if partition.memory_gb_per_gpu is None:
            # Seeded before memory was reference data; a figure the site set stays.
            partition.memory_gb_per_gpu = row.memory_gb
            partition.save(update_fields=["memory_gb_per_gpu"])
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
