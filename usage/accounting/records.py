"""What one read line becomes: a job record, a rejected line or a skipped step line."""

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import NamedTuple

from allocations.names import account_key  # the one rule for comparing account names
from usage.accounting.common import (
    _REJECTED_TEXT_LIMIT,
)
from usage.accounting.gpus import (
    gpu_equivalents,
    mig_profile,
)


class JobRecord(NamedTuple):
    """One run of one job allocation, as the scheduler reported it.

    A named tuple rather than a frozen dataclass: a million of them are built per import, and
    a frozen dataclass's __init__ assigns each field through object.__setattr__, several
    times the cost of building a tuple.
    """

    line_no: int
    job_key: str  # unique per run; see parse_sacct / parse_pbs for how it is built
    job_id_raw: str
    job_id: str  # what people see: "123", "123_4", "123+1", "123_[1-5]"
    account: str  # as the scheduler printed it; compare with `account_key`
    user: str
    partition: str
    state: str  # "CANCELLED by 1234" -> "CANCELLED"; unknown names kept, upper-case
    submit: datetime | None  # aware, UTC
    start: datetime | None  # aware, UTC; None while pending
    end: datetime | None  # aware, UTC; None while running
    elapsed_seconds: int  # so far, for a running job
    gpus: int  # whole scheduler GPUs (gres/gpu units), counted once; MIG slices not included
    nodes: int
    energy_joules: int | None  # measured by the scheduler, None when not measured
    job_name: str
    running: bool  # not finished: a later import may report more usage for the same job_key
    # Typed GPU entries as listed, type name -> count: (("a100", 1),) for
    # `gres/gpu:a100=1,gres/gpu=1`, (("1g.10gb", 7),) for seven MIG slices. Slices are in
    # here and not in `gpus`: what a slice is worth depends on the partition's hardware, see
    # `gpu_share` and `gpu_equivalents`.
    gpu_types: tuple[tuple[str, int], ...] = ()
    # The line named no GPUs at all (no GPU field, or every one empty), as opposed to naming
    # none allocated: `gpus` is 0 for want of data, and the import should say how often.
    no_gpu_field: bool = False

    @property
    def gpu_seconds(self) -> int:
        return self.gpus * self.elapsed_seconds

    @property
    def account_key(self) -> str:
        return account_key(self.account)

    @property
    def gpu_slices(self) -> int:
        """MIG slices among the typed GPU entries (each one gres/gpu unit to Slurm)."""
        return sum(count for name, count in self.gpu_types if mig_profile(name) is not None)

    def gpu_share(self, profiles: Mapping[str, float] | None = None) -> float:
        """Whole GPUs plus each MIG slice's share of a GPU, by `profiles` (see
        `gpu_equivalents`; default `MIG_PROFILES`). Raises UnknownSliceProfile."""
        return gpu_equivalents(self.gpu_types, self.gpus + self.gpu_slices, profiles)


# JobRecord(a, b, ...) goes through the Python-level __new__ that NamedTuple generates, which
# binds every field as an argument; building the tuple directly costs a third as much. The
# readers below fill every field, in order.
_new_record = tuple.__new__


@dataclass(frozen=True, slots=True)
class Rejected:
    line_no: int
    reason: str
    text: str  # the line as read, at most 500 characters


@dataclass(frozen=True, slots=True)
class StepSkipped:
    line_no: int


def _rejected(line_no: int, reason: str, line: str) -> Rejected:
    return Rejected(line_no, reason, line[:_REJECTED_TEXT_LIMIT].rstrip("\r\n"))
