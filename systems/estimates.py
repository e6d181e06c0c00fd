"""Training-compute, energy and emission estimates for an AI training run.

Pure functions over plain numbers: the threshold policy and the partition come in as frozen
dataclasses, so the rules can be tested without a database. Sources: EU AI Act, Regulation
(EU) 2024/1689, Art. 51-53 and Annex XI; Commission guidelines for GPAI providers,
C(2025) 5045 (see docs/domain-rules.md).
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from datetime import date, timedelta

SECONDS_PER_HOUR = 3600.0

# Dense transformers: about 2 FLOP per parameter and token in the forward pass and 4 in the
# backward pass (guidelines C(2025) 5045, architecture-based method).
FLOP_PER_PARAMETER_AND_TOKEN = 6.0

# Guidelines C(2025) 5045 accept any estimation method within +-30 %; when an applicant gives
# both estimates, a larger disagreement is a flag for reviewers.
ESTIMATE_TOLERANCE = 0.30

# Share of one GPU per MIG compute slice of the NVIDIA cards that split into seven (A100, H100,
# H200, GH200; NVIDIA's MIG user guide, "Supported MIG Profiles"): a `1g.10gb` slice is a
# seventh, `7g.80gb` the whole card. A profile is looked up as named (`1g.10gb`), then without
# its memory (`1g`). Cards that split otherwise (an A30 into four) declare their own.
NVIDIA_MIG_SHARES = {"1g": 1 / 7, "2g": 2 / 7, "3g": 3 / 7, "4g": 4 / 7, "7g": 1.0}

SYSTEMIC_RISK = "systemic_risk"
GPAI = "gpai"
BELOW_GPAI = "below_gpai"


def _check_amount(value: float, what: str) -> float:
    if not math.isfinite(value) or value < 0:
        raise ValueError(f"{what} must be a number of 0 or more (got {value!r}).")
    return float(value)


def _check_positive(value: float, what: str) -> float:
    if not math.isfinite(value) or value <= 0:
        raise ValueError(f"{what} must be a number greater than 0 (got {value!r}).")
    return float(value)


def _check_share(value: float, what: str) -> float:
    if not math.isfinite(value) or not 0 < value <= 1:
        raise ValueError(f"{what} must be greater than 0 and at most 1 (got {value!r}).")
    return float(value)


@dataclass(frozen=True)
class PolicyFigures:
    """The numbers of one version of the threshold policy.

    Defaults: Art. 51(2) AI Act (systemic risk) and guidelines C(2025) 5045 (GPAI criterion,
    one-third modification rule). They are data because Art. 51(3) lets the Commission change
    them by delegated act.
    """

    gpai_flop: float = 1e23
    systemic_risk_flop: float = 1e25
    modification_share: float = 1 / 3
    warning_share: float = 0.5
    default_utilisation: float = 0.4

    def __post_init__(self) -> None:
        _check_positive(self.gpai_flop, "The GPAI threshold")
        _check_positive(self.systemic_risk_flop, "The systemic-risk threshold")
        if self.systemic_risk_flop <= self.gpai_flop:
            raise ValueError("The systemic-risk threshold must be above the GPAI threshold.")
        _check_share(self.modification_share, "The modification share")
        _check_share(self.warning_share, "The warning share")
        _check_share(self.default_utilisation, "The default utilisation")


@dataclass(frozen=True)
class PartitionFigures:
    """One scheduler GPU of a partition (a LUMI-G GCD, not a whole MI250X), plus its site."""

    peak_flops: float
    power_watts: float
    pue: float = 1.0
    grid_kg_per_kwh: float = 0.0

    def __post_init__(self) -> None:
        _check_positive(self.peak_flops, "Peak FLOP/s")
        _check_positive(self.power_watts, "GPU power")
        if not math.isfinite(self.pue) or self.pue < 1:
            # PUE is facility energy over IT energy, so it cannot be below 1.
            raise ValueError(f"PUE must be 1 or more (got {self.pue!r}).")
        _check_amount(self.grid_kg_per_kwh, "Grid carbon intensity")


def hardware_flop(*, gpu_hours: float, peak_flops: float, utilisation: float) -> float:
    """Hardware-based compute: GPU-seconds x peak FLOP/s x utilisation."""
    _check_amount(gpu_hours, "GPU-hours")
    _check_positive(peak_flops, "Peak FLOP/s")
    _check_share(utilisation, "Utilisation")
    return gpu_hours * SECONDS_PER_HOUR * peak_flops * utilisation


def grant_compute(
    *,
    used_peak_flop: float,
    used_gpu_seconds: float,
    granted_gpu_hours: float,
    peak_flops: float,
    utilisation: float,
    live: bool,
) -> tuple[float, float]:
    """Used and projected hardware-based compute of one grant, in FLOP.

    `used_peak_flop` is what the accounting shows at utilisation 1: each job's GPU-seconds at the
    peak of the partition it ran on (usage.selectors sums it in SQL). A live grant is projected
    as used in full: the rest of it, at its own partition's peak, adds to what was used. Compute
    is foreseeable from the grant (AI Act recital 112), so the projection is what the art. 52
    notification watches.
    """
    used = used_peak_flop * utilisation
    if not live:
        return used, used
    remaining_seconds = max(granted_gpu_hours * SECONDS_PER_HOUR - used_gpu_seconds, 0.0)
    return used, used + remaining_seconds * peak_flops * utilisation


def architecture_flop(*, parameters: float, tokens: float) -> float:
    """Architecture-based compute of a dense transformer: 6 x parameters x training tokens."""
    _check_amount(parameters, "The number of parameters")
    _check_amount(tokens, "The number of training tokens")
    return FLOP_PER_PARAMETER_AND_TOKEN * float(parameters) * float(tokens)


def gpu_hours_for(*, flop: float, peak_flops: float, utilisation: float) -> float:
    """GPU-hours needed to reach `flop` (the inverse of `hardware_flop`)."""
    _check_amount(flop, "Compute")
    _check_positive(peak_flops, "Peak FLOP/s")
    _check_share(utilisation, "Utilisation")
    return flop / (SECONDS_PER_HOUR * peak_flops * utilisation)


def relative_gap(a: float | None, b: float | None) -> float | None:
    """How far the larger of two compute estimates exceeds the smaller, as a share of the smaller.

    1.0e23 and 1.3e23 give 0.30 whichever comes first. Measuring against the smaller estimate
    gives the larger (stricter) reading of the disagreement. Returns None when either estimate
    is missing. An estimate that is present must be greater than 0: against a zero the gap
    would be infinite, which JSON cannot carry, so that raises ValueError.
    """
    if a is None or b is None:
        return None
    _check_positive(a, "A compute estimate")
    _check_positive(b, "A compute estimate")
    return abs(a - b) / min(a, b)


def classify(flop: float, policy: PolicyFigures) -> str:
    """Where a cumulative compute figure sits: "systemic_risk", "gpai" or "below_gpai".

    A figure exactly on a threshold counts as reaching it: Art. 52(1) AI Act ties the
    notification to the threshold being "met". (Art. 51(2) and guidelines C(2025) 5045 word
    the criteria as "greater than"; the two readings differ only exactly on the threshold,
    and counting it is the cautious side.)
    """
    _check_amount(flop, "Compute")
    if flop >= policy.systemic_risk_flop:
        return SYSTEMIC_RISK
    if flop >= policy.gpai_flop:
        return GPAI
    return BELOW_GPAI


def it_energy_kwh(*, gpu_hours: float, power_watts: float) -> float:
    """IT energy from GPU-hours and the power of one GPU (TDP, so an upper bound)."""
    _check_amount(gpu_hours, "GPU-hours")
    _check_amount(power_watts, "GPU power")
    return gpu_hours * power_watts / 1000.0


def facility_energy_kwh(*, it_kwh: float, pue: float) -> float:
    """Energy drawn by the whole facility: IT energy x PUE."""
    _check_amount(it_kwh, "IT energy")
    if not math.isfinite(pue) or pue < 1:
        raise ValueError(f"PUE must be 1 or more (got {pue!r}).")
    return it_kwh * pue


def co2e_kg(*, facility_kwh: float, grid_kg_per_kwh: float) -> float:
    """Location-based emissions: facility energy x grid carbon intensity."""
    _check_amount(facility_kwh, "Facility energy")
    _check_amount(grid_kg_per_kwh, "Grid carbon intensity")
    return facility_kwh * grid_kg_per_kwh


def significant(x: float, digits: int = 2) -> float:
    """Round to `digits` significant figures (guidelines C(2025) 5045 report compute to two)."""
    if digits < 1:
        raise ValueError(f"Keep at least one significant figure (got {digits!r}).")
    if not math.isfinite(x):
        raise ValueError(f"Only a finite number can be rounded (got {x!r}).")
    # Rounding the decimal text, not x / 10**k, avoids binary artefacts like 1.1000000000000001e23.
    return float(f"{x:.{digits - 1}e}")


def modification_threshold(
    *, base_model_flop: float | None, base_is_systemic_risk: bool, policy: PolicyFigures
) -> float:
    """Compute above which whoever modifies a GPAI model becomes its provider.

    Guidelines C(2025) 5045: one third of the original model's training compute; when that is
    unknown, one third of the GPAI threshold, or of the systemic-risk threshold when the
    original is a systemic-risk model.
    """
    if base_model_flop is not None:
        reference = _check_positive(base_model_flop, "The base model's compute")
    elif base_is_systemic_risk:
        reference = policy.systemic_risk_flop
    else:
        reference = policy.gpai_flop
    return policy.modification_share * reference


@dataclass(frozen=True)
class ComputeEstimate:
    """Everything the product shows about the compute of one planned or finished training run.

    Compute is in FLOP, energy in kWh, emissions in kg CO2e.
    """

    utilisation: float
    flop_hardware: float | None
    flop_architecture: float | None
    flop_upper_bound: float | None
    flop_best: float
    relative_gap: float | None
    gap_exceeds_tolerance: bool
    classification: str
    is_modification: bool
    modification_threshold: float | None
    modification_makes_provider: bool | None
    energy_kwh: float | None
    facility_energy_kwh: float | None
    co2e_kg: float | None

    def to_dict(self) -> dict[str, float | str | bool | None]:
        return asdict(self)


def estimate(
    *,
    partition: PartitionFigures | None,
    gpu_hours: float | None,
    parameters: float | None,
    tokens: float | None,
    utilisation: float | None,
    policy: PolicyFigures,
    synthetic_data_flop: float = 0.0,
    base_model: str = "",
    base_model_flop: float | None = None,
    base_is_systemic_risk: bool = False,
) -> ComputeEstimate:
    """Estimate the compute, energy and emissions of a training run from what is known.

    - `flop_best` is the larger of the hardware and architecture estimates plus compute spent
      generating synthetic data; guidelines C(2025) 5045 count all compute that contributes to
      capabilities, and taking the larger estimate keeps the classification on the cautious
      side. It is 0 when nothing is known.
    - `flop_upper_bound` is the hardware estimate at utilisation 1.0 (the architecture
      estimate when there is no hardware one), plus synthetic-data compute. It is never below
      `flop_best`: if the architecture estimate is larger than the hardware can deliver at
      full utilisation, the architecture estimate is the bound.
    - Energy and emissions follow the GPU-hours; without them, the GPU-hours the architecture
      estimate needs on the partition at the utilisation.
    - For a modification (a base model is named) the classification uses the cumulative
      compute, own plus the base model's. A modification of a systemic-risk model stays a
      systemic-risk model, whether or not the base model's compute is known.
    """
    used_utilisation = _check_share(
        policy.default_utilisation if utilisation is None else utilisation, "Utilisation"
    )
    if gpu_hours is not None:
        _check_amount(gpu_hours, "GPU-hours")
    if parameters is not None:
        _check_amount(parameters, "The number of parameters")
    if tokens is not None:
        _check_amount(tokens, "The number of training tokens")
    synthetic = _check_amount(synthetic_data_flop, "Synthetic-data compute")
    is_modification = bool(base_model.strip())
    if not is_modification and (base_model_flop is not None or base_is_systemic_risk):
        raise ValueError(
            "Base-model compute and systemic-risk status only apply to a modification: "
            "name the base model."
        )
    if base_model_flop is not None:
        _check_positive(base_model_flop, "The base model's compute")

    flop_hardware = flop_at_full_utilisation = None
    energy = facility_energy = emissions = None
    if gpu_hours is not None and partition is not None:
        flop_hardware = hardware_flop(
            gpu_hours=gpu_hours, peak_flops=partition.peak_flops, utilisation=used_utilisation
        )
        flop_at_full_utilisation = hardware_flop(
            gpu_hours=gpu_hours, peak_flops=partition.peak_flops, utilisation=1.0
        )
        energy = it_energy_kwh(gpu_hours=gpu_hours, power_watts=partition.power_watts)
        facility_energy = facility_energy_kwh(it_kwh=energy, pue=partition.pue)
        emissions = co2e_kg(facility_kwh=facility_energy, grid_kg_per_kwh=partition.grid_kg_per_kwh)

    flop_architecture = None
    if parameters is not None and tokens is not None:
        flop_architecture = architecture_flop(parameters=parameters, tokens=tokens)
        if energy is None and partition is not None and used_utilisation > 0:
            # No GPU-hours asked for yet: the energy of the hours the architecture estimate
            # needs on this partition at this utilisation.
            needed = gpu_hours_for(
                flop=flop_architecture,
                peak_flops=partition.peak_flops,
                utilisation=used_utilisation,
            )
            energy = it_energy_kwh(gpu_hours=needed, power_watts=partition.power_watts)
            facility_energy = facility_energy_kwh(it_kwh=energy, pue=partition.pue)
            emissions = co2e_kg(
                facility_kwh=facility_energy, grid_kg_per_kwh=partition.grid_kg_per_kwh
            )

    training = [f for f in (flop_hardware, flop_architecture) if f is not None]
    flop_best = (max(training) if training else 0.0) + synthetic
    bounds = [f for f in (flop_at_full_utilisation, flop_architecture) if f is not None]
    flop_upper_bound = max(bounds) + synthetic if bounds else None

    # A zero estimate (no GPU-hours or no tokens yet) says nothing about agreement.
    gap = None
    if flop_hardware and flop_architecture:
        gap = relative_gap(flop_hardware, flop_architecture)

    threshold = makes_provider = None
    cumulative = flop_best
    if is_modification:
        threshold = modification_threshold(
            base_model_flop=base_model_flop,
            base_is_systemic_risk=base_is_systemic_risk,
            policy=policy,
        )
        makes_provider = flop_best > threshold
        cumulative += base_model_flop or 0.0
    if is_modification and base_is_systemic_risk:
        classification = SYSTEMIC_RISK
    else:
        classification = classify(cumulative, policy)

    return ComputeEstimate(
        utilisation=used_utilisation,
        flop_hardware=flop_hardware,
        flop_architecture=flop_architecture,
        flop_upper_bound=flop_upper_bound,
        flop_best=flop_best,
        relative_gap=gap,
        gap_exceeds_tolerance=gap is not None and gap > ESTIMATE_TOLERANCE,
        classification=classification,
        is_modification=is_modification,
        modification_threshold=threshold,
        modification_makes_provider=makes_provider,
        energy_kwh=energy,
        facility_energy_kwh=facility_energy,
        co2e_kg=emissions,
    )


@dataclass(frozen=True)
class UseProjection:
    """Where a grant's use is heading if it goes on at the rate so far."""

    used: float
    granted: float
    rate_per_day: float | None
    at_end: float
    runs_out_on: date | None

    @property
    def used_share(self) -> float | None:
        return self.used / self.granted if self.granted else None

    @property
    def at_end_share(self) -> float | None:
        return self.at_end / self.granted if self.granted else None

    @property
    def remaining(self) -> float:
        return max(self.granted - self.used, 0.0)


def use_projection(
    *, used: float, granted: float, start: date, end: date, today: date
) -> UseProjection:
    """GPU-hours used so far, spread evenly over the days since the start (today included),
    carried on to the end date. `runs_out_on` is the day the grant would be used up, when that
    comes before the end."""
    elapsed = (min(today, end) - start).days + 1
    if elapsed <= 0 or used <= 0:
        return UseProjection(used, granted, None, used, None)
    rate = used / elapsed
    at_end = used + rate * max((end - today).days, 0)
    runs_out_on = None
    if used < granted < at_end:
        runs_out_on = today + timedelta(days=math.ceil((granted - used) / rate))
    return UseProjection(used, granted, rate, at_end, runs_out_on)
