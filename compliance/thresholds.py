"""Threshold levels and organisation groups as pure functions (no database)."""

from collections.abc import Iterable
from dataclasses import dataclass

from core import formats
from systems.estimates import PolicyFigures

GPAI_WARNING = "gpai_warning"


GPAI = "gpai"


SYSTEMIC_RISK_WARNING = "systemic_risk_warning"


SYSTEMIC_RISK = "systemic_risk"


@dataclass(frozen=True)
class Level:
    name: str
    threshold: float


def allocation_levels(percentages: Iterable[int]) -> list[Level]:
    """`allocation_75` etc.: the share of the grant used, as a fraction."""
    return [Level(f"allocation_{p}", p / 100) for p in sorted(set(percentages))]


def compute_levels(policy: PolicyFigures) -> list[Level]:
    return [
        Level(GPAI_WARNING, policy.gpai_flop * policy.warning_share),
        Level(GPAI, policy.gpai_flop),
        Level(SYSTEMIC_RISK_WARNING, policy.systemic_risk_flop * policy.warning_share),
        Level(SYSTEMIC_RISK, policy.systemic_risk_flop),
    ]


def levels_reached(value: float, levels: Iterable[Level]) -> list[Level]:
    """A level is reached when the value meets its threshold (art. 52(1): "met")."""
    return [level for level in levels if value >= level.threshold]


# Split training runs (docs/domain-rules.md): what one training effort spread over several
# allocations, systems or related companies leaves in the accounting.
FOOTPRINT_GPUS = "footprint_gpus"


FOOTPRINT_MEMORY = "footprint_memory"


JOB_MEMORY = "job_memory"


PLAN_OVERRUN = "plan_overrun"


MODEL_ABOVE_PLAN = "model_above_plan"


FOOTPRINT_LEVELS = (FOOTPRINT_GPUS, FOOTPRINT_MEMORY)


MEMORY_LEVELS = (FOOTPRINT_MEMORY, JOB_MEMORY)


PLAN_LEVELS = (PLAN_OVERRUN, MODEL_ABOVE_PLAN)


SPLIT_RUN_LEVELS = (FOOTPRINT_GPUS, FOOTPRINT_MEMORY, JOB_MEMORY, PLAN_OVERRUN, MODEL_ABOVE_PLAN)


def level_figure(level: str, value: float) -> str:
    """A level's value or threshold as people read it: a share of the grant, scheduler GPUs,
    GB of accelerator memory, or FLOP."""
    if level.startswith("allocation_"):
        return formats.percent(value)
    if level == FOOTPRINT_GPUS:
        return f"{formats.whole(value)} GPUs"
    if level in MEMORY_LEVELS:
        return f"{formats.whole(value)} GB"
    return f"{formats.flop(value)} FLOP"
