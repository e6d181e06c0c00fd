"""What a parsed line becomes: a row of the usage table (`Row`), the rules that compare two
versions of one run (`supersedes`, `time_shifted`), and where a line's account and partition
lead (`_Places`, `_row`)."""

from __future__ import annotations

from datetime import timedelta

from allocations.models import Allocation
from allocations.names import account_key
from systems.models import Cluster, Partition
from usage.accounting import (
    MIG_PROFILES,
    JobRecord,
    UnknownSliceProfile,
)
from usage.models import UsageRecord

# The stored fields that describe a run; two versions of a run are "identical" when all agree.
DATA_FIELDS = (
    "account",
    "account_key",
    "job_id",
    "user",
    "partition_name",
    "job_name",
    "state",
    "running",
    "submit",
    "start",
    "end",
    "elapsed_seconds",
    "gpus",
    "gpu_slices",
    "nodes",
    "gpu_seconds",
    "energy_joules",
)

# What a row carries behind the job key and DATA_FIELDS: how the run is attributed and where it
# came from. Row = (job_key, *DATA_FIELDS, *ROW_TAIL).
ROW_TAIL = ("allocation_id", "partition_id", "outside_window", "no_gpu_field", "line_no")
_DATA_END = 1 + len(DATA_FIELDS)

# The usage table's columns a new run is written with, in the order a batch of new runs is
# copied in (`usage.importer.batches._NewRuns`).
NEW_RUN_COLUMNS = (
    "cluster_id",
    "job_key",
    *DATA_FIELDS,
    "allocation_id",
    "partition_id",
    "import_run_id",
    "updated_at",
)


# Informative sacct fields an input may leave out: a run already stored keeps its value then,
# rather than losing a measured energy or a job name to a narrower `--format` list.
KEPT_WHEN_ABSENT = {
    "User": "user",
    "Partition": "partition_name",
    "JobName": "job_name",
    "ConsumedEnergyRaw": "energy_joules",
}


_RUNNING = DATA_FIELDS.index("running")


_START = DATA_FIELDS.index("start")


_ELAPSED = DATA_FIELDS.index("elapsed_seconds")


_PARTITION_NAME = DATA_FIELDS.index("partition_name")


_SUBMIT = DATA_FIELDS.index("submit")


_END = DATA_FIELDS.index("end")


_JOB_ID = DATA_FIELDS.index("job_id")


_limits = {name: UsageRecord._meta.get_field(name).max_length for name in DATA_FIELDS}


_KEY_LIMIT = UsageRecord._meta.get_field("job_key").max_length


_ACCOUNT_LIMIT = _limits["account"]


_JOB_ID_LIMIT = _limits["job_id"]


_USER_LIMIT = _limits["user"]


_PARTITION_LIMIT = _limits["partition_name"]


_JOB_NAME_LIMIT = _limits["job_name"]


_STATE_LIMIT = _limits["state"]

Row = tuple  # (job_key, *DATA_FIELDS values, *ROW_TAIL values)


def supersedes(new: Row, old: Row) -> bool:
    """Whether `new` (a run's DATA_FIELDS values) should replace the stored `old` ones.

    Mirrored in SQL by `_SUPERSEDES_SQL`; both paths must agree line for line.
    """
    if not new[_RUNNING]:
        return old[_RUNNING] or new != old
    if not old[_RUNNING]:
        return False  # a finished run is never replaced by a running version of it
    if new[_ELAPSED] != old[_ELAPSED]:
        return new[_ELAPSED] > old[_ELAPSED]
    return new[_START] is not None and old[_START] is None


# A UTC offset is a whole number of quarter hours and never more than 26 hours off another.
_OFFSET_STEP = timedelta(minutes=15)
_OFFSET_SPAN = timedelta(hours=26)


def _offset_apart(new, old) -> bool:
    """Whether two times differ by what two UTC offsets can: a non-zero whole number of
    quarter hours, at most 26 hours."""
    gap = new - old
    return bool(gap) and abs(gap) <= _OFFSET_SPAN and not gap % _OFFSET_STEP


def time_shifted(new: Row, old: tuple) -> bool:
    """Whether the new run `new` (a row) is a stored run `old` (submit, start, end) read in
    another time zone: the same job id, every time moved by a UTC offset, the same duration.

    A run's key holds its Submit in UTC (see parse_sacct), so the same lines imported once in
    the right zone and once in a wrong one would make two runs of one job. Requeued runs of a
    job (`sacct -D`) are told apart by the same key and are not shifted copies of each other:
    Slurm resets Submit to the moment of the requeue, and the new run starts when it starts,
    so their times do not differ by whole quarter hours to the second, and their durations
    differ. Mirrored in SQL by `_shifted_sql`; both must agree.
    """
    submit, start, end = new[_SUBMIT + 1], new[_START + 1], new[_END + 1]
    old_submit, old_start, old_end = old
    if submit is None or old_submit is None or not _offset_apart(submit, old_submit):
        return False
    if start is not None and old_start is not None:
        if not _offset_apart(start, old_start):
            return False
        if end is not None and old_end is not None and end - start != old_end - old_start:
            return False
    return True


def _shift_reason(job_id: str, submit, old_submit, old_run: int | None) -> str:
    hours = (old_submit - submit).total_seconds() / 3600
    shift = f"{abs(hours):g} h {'later' if hours > 0 else 'earlier'}"
    run = f" by import run {old_run}" if old_run else ""
    return (
        f"Job {job_id} is stored already{run} with its times {shift} "
        f"(submitted {old_submit:%Y-%m-%d %H:%M:%S} UTC): the same run read in another time "
        "zone. Not added. If the stored times are the wrong ones, delete those records and "
        "import again with the right --timezone."
    )


class _Owner:
    """An allocation as the import needs it: whose usage a run is, and whether it counts."""

    __slots__ = ("id", "usage_from", "usage_until", "profiles")

    def __init__(self, pk: int, usage_from, usage_until, profiles: dict[str, float]) -> None:
        self.id = pk
        self.usage_from = usage_from
        self.usage_until = usage_until
        self.profiles = profiles


class _Places:
    """What a run's line is checked against on this cluster, read once per import (before the
    parsing process forks, which then has it too): the allocations by account key, with their
    usage windows, and the partitions by name, with their size and GPU slice profiles."""

    def __init__(self, cluster: Cluster) -> None:
        partitions = list(Partition.objects.filter(cluster=cluster))
        profiles = {partition.pk: partition.slice_profiles() for partition in partitions}
        self.partitions = {
            partition.name: (partition.total_gpus, profiles[partition.pk])
            for partition in partitions
        }
        self.partition_ids = {partition.name: partition.pk for partition in partitions}
        # account -> account_key, GPU types -> MIG slices among them: both repeat line to line
        self.keys: dict[str, str] = {}
        self.slices: dict[tuple, int] = {}
        self.owners = {
            key: _Owner(pk, usage_from, usage_until, profiles.get(partition_id, MIG_PROFILES))
            for pk, key, usage_from, usage_until, partition_id in Allocation.objects.filter(
                cluster=cluster
            ).values_list("id", "account_key", "usage_from", "usage_until", "partition_id")
        }


def _row(record: JobRecord, places: _Places) -> Row | str:
    """The values to store for one run, or the reason the line cannot be stored."""
    # One unpacking instead of a descriptor call per field: this runs a million times.
    (
        line_no,
        job_key,
        _job_id_raw,
        job_id,
        account,
        user,
        partition_name,
        state,
        submit,
        start,
        end,
        elapsed,
        gpus,
        nodes,
        energy,
        job_name,
        running,
        gpu_types,
        no_gpu_field,
    ) = record
    if len(job_key) > _KEY_LIMIT or len(job_id) > _JOB_ID_LIMIT:
        return f"Job id {job_id[:80]!r} is longer than this site stores."
    if len(account) > _ACCOUNT_LIMIT:
        return f"Account {account[:80]!r} is longer than {_ACCOUNT_LIMIT} characters."
    if "\x00" in job_name or "\x00" in user:
        # PostgreSQL text cannot hold NUL; the name is informative only
        job_name = job_name.replace("\x00", "")
        user = user.replace("\x00", "")
    key = places.keys.get(account)
    if key is None:
        key = account_key(account)
        if len(places.keys) < 100_000:
            places.keys[account] = key
    owner = places.owners.get(key)
    partition = places.partitions.get(partition_name)

    slices = 0
    if gpu_types:
        slices = places.slices.get(gpu_types)
        if slices is None:
            slices = record.gpu_slices
            if len(places.slices) < 4096:
                places.slices[gpu_types] = slices
    if slices:
        # a slice is worth what the partition it ran on declares (its allocation's partition
        # when the line names none; the A100/H100 table on a partition this site does not know)
        if partition is not None:
            profiles = partition[1]
        elif owner is not None and not partition_name:
            profiles = owner.profiles
        else:
            profiles = MIG_PROFILES
        try:
            share = record.gpu_share(profiles)
        except (UnknownSliceProfile, ValueError) as error:
            where = f" on partition {partition_name}" if partition_name else ""
            return f"Job {job_id}{where}: {error}"
        gpu_seconds = round(share * elapsed)
    else:
        share = gpus
        gpu_seconds = gpus * elapsed
    if partition is not None and share > partition[0]:
        return (
            f"Job {job_id} has {share:g} GPUs, more than partition {partition_name} has"
            f" ({partition[0]:,})."
        )

    allocation_id = None
    outside = False
    if owner is not None:
        when = start or submit
        if when is None or owner.usage_from is None or owner.usage_from <= when < owner.usage_until:
            allocation_id = owner.id
        else:
            outside = True
    # "no GPU field" says something only of a GPU partition: every partition this site knows,
    # and the allocation's when the line names none. A CPU partition's lines name no GPUs.
    if no_gpu_field:
        no_gpu_field = partition is not None or (owner is not None and not partition_name)
    return (
        job_key,
        account,
        key,
        job_id,
        user[:_USER_LIMIT],
        partition_name[:_PARTITION_LIMIT],
        job_name[:_JOB_NAME_LIMIT],
        state[:_STATE_LIMIT],
        running,
        submit,
        start,
        end,
        elapsed,
        gpus,
        slices,
        nodes,
        gpu_seconds,
        energy,
        allocation_id,
        places.partition_ids.get(partition_name),
        outside,
        no_gpu_field,
        line_no,
    )
