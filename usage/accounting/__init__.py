"""Read scheduler accounting into job records: Slurm `sacct --parsable2` and PBS/TORQUE logs.

Pure functions over lines of text, no Django and no I/O: the usage import streams a file through
`parse_sacct` or `parse_pbs` and writes what comes out. Each input line becomes exactly one of

- `JobRecord`   one run of one job allocation, with its GPU count and elapsed time;
- `StepSkipped` a Slurm step line (`123.batch`, `123.0`) or a PBS record that is not a run's
                end: it repeats usage already on the allocation line, so counting it would
                double it;
- `Rejected`    a malformed line, with its number and a sentence an operator can act on.

Blank lines and sacct's header line yield nothing. Input that cannot be read at all (a header
or field list without the required fields, an empty field name or delimiter, a time format
that names no full date) raises `AccountingFormatError` before any line is yielded. Anything
wrong with one line - a NUL byte, a number past 64 bits, a reported elapsed time over ten
years, more GPUs than any job has, a line over `LINE_LENGTH_LIMIT` characters - rejects that
line alone, with its number.

Speed matters: an import of a million jobs plus two million step lines must parse in a few
seconds, so step lines are recognised from their id field alone, the UTC offset of local
times is looked up once per wall-clock hour, and TRES strings, which repeat, are read once.

One format per module, beside what they share, so that another scheduler's format goes in
beside them:

- `sacct`   Slurm's `sacct --parsable2` / `--parsable` (usage.sacct_arrow reads the same in
            columns);
- `pbs`     PBS Professional and TORQUE accounting logs;
- `records` what a line becomes;
- `gpus`    whole GPUs and MIG slices from TRES and GRES strings;
- `common`  limits, errors, account names, times, elapsed times and job states.

What other code uses is imported from here.
"""

from allocations.names import account_key  # the one rule for comparing account names
from usage.accounting.common import (
    ELAPSED_LIMIT_SECONDS,
    GPU_CEILING,
    LINE_LENGTH_LIMIT,
    AccountingFormatError,
    UnknownSliceProfile,
    account_problem,
    normalise_state,
    parse_elapsed,
    parse_time,
)
from usage.accounting.gpus import (
    MIG_PROFILES,
    gpu_equivalents,
    mig_profile,
    parse_alloc_gres_gpus,
    parse_alloc_tres_gpus,
)
from usage.accounting.pbs import parse_pbs
from usage.accounting.records import JobRecord, Rejected, StepSkipped
from usage.accounting.sacct import SACCT_OPTIONAL, SACCT_REQUIRED, parse_sacct

__all__ = [
    "ELAPSED_LIMIT_SECONDS",
    "GPU_CEILING",
    "LINE_LENGTH_LIMIT",
    "MIG_PROFILES",
    "SACCT_OPTIONAL",
    "SACCT_REQUIRED",
    "AccountingFormatError",
    "JobRecord",
    "Rejected",
    "StepSkipped",
    "UnknownSliceProfile",
    "account_key",
    "account_problem",
    "gpu_equivalents",
    "mig_profile",
    "normalise_state",
    "parse_alloc_gres_gpus",
    "parse_alloc_tres_gpus",
    "parse_elapsed",
    "parse_pbs",
    "parse_sacct",
    "parse_time",
]
