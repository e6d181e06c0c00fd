"""GPUs in accounting: whole GPUs and MIG slices from Slurm TRES and GRES strings."""

import re
from collections.abc import Iterable, Mapping
from functools import lru_cache
from types import MappingProxyType

from systems.estimates import NVIDIA_MIG_SHARES  # what a slice of an A100/H100 is worth
from usage.accounting.common import (
    _CACHED_TEXT_LIMIT,
    _DIGITS_LIMIT,
    UnknownSliceProfile,
    _is_number,
    _shown,
)

# Share of one GPU per MIG compute slice on NVIDIA A100 and H100 (seven slices per card); a
# profile `1g.10gb` or `1g.10gb+me` is looked up as itself, then without its memory (`1g`).
# Other cards slice differently (an A30 has four: 1g = 1/4), so a partition declares its own.
MIG_PROFILES: Mapping[str, float] = MappingProxyType(NVIDIA_MIG_SHARES)
# NVIDIA's profile names: `<compute slices>g.<memory>gb`, with `<n>c.` in front for a compute
# instance inside a larger GPU instance and `+me` (media extensions) behind. Slurm names a MIG
# GRES type after its profile (`gres/gpu:1g.10gb`); sites that autodetect may prefix the card
# (`a100_1g.10gb`, `nvidia_a100-sxm4-80gb_3g.40gb`).
_MIG_NAME = re.compile(r"(?:^|[_\-])((?:\d+c\.)?\d+g\.\d+gb(?:\+[a-z]+)?)$", re.IGNORECASE)


def mig_profile(gpu_type: str) -> str | None:
    """The MIG profile a GPU type name stands for (`1g.10gb` for `a100_1g.10gb`), lower-case,
    or None when the type is a whole card (`a100`, `rtx30`)."""
    return _mig_profile(gpu_type) if len(gpu_type) <= 200 else None


@lru_cache(maxsize=1024)
def _mig_profile(gpu_type: str) -> str | None:
    found = _MIG_NAME.search(gpu_type)
    return found.group(1).lower() if found else None


def _slice_share(gpu_type: str, profile: str, profiles: Mapping[str, float]) -> float:
    share = profiles.get(profile)
    if share is None:  # `1g.10gb` -> `1g`, `1g.10gb+me` -> `1g`, `1c.3g.40gb` -> `1c.3g`
        share = profiles.get(profile.rsplit(".", 1)[0])
    if share is None:
        known = ", ".join(sorted(profiles)) or "none"
        raise UnknownSliceProfile(
            f"GPU type {gpu_type!r} is a MIG slice of profile {profile!r}, which is not among"
            f" the slice profiles declared for the partition ({known})."
        )
    if not 0 < share <= 1:
        raise ValueError(f"MIG profile {profile!r} is declared as {share} GPUs; a slice is 0-1.")
    return share


def gpu_equivalents(
    typed_counts: Mapping[str, int] | Iterable[tuple[str, int]],
    untyped_count: int | None,
    profiles: Mapping[str, float] | None = None,
) -> float:
    """Whole GPUs that a job's GPU entries are worth, MIG slices counted by their share.

    `typed_counts` are the typed entries (type -> count: `JobRecord.gpu_types`, or a mapping),
    `untyped_count` the untyped total (`gres/gpu=N`), None when the line lists none.
    `profiles` maps a MIG profile (`1g.10gb`) or the profile without its memory (`1g`,
    `1c.3g`) to its share of one GPU; default `MIG_PROFILES` (A100/H100: 1g = 1/7 ... 7g = 1).

    How the entries combine. Slurm counts each MIG slice as one `gres/gpu` unit, so on a MIG
    partition `gres/gpu=7,gres/gpu:1g.10gb=7` is one job holding seven 1g slices: the total
    counts the same seven units the typed entry names, and the typed entry says what they
    are. It is read as 7 x 1/7 = 1 GPU, never as 7 (nor 14). In general the untyped total
    counts every unit once; typed slice entries take their units out of it at their share,
    and what remains are whole GPUs (`gres/gpu=3,gres/gpu:a100=1,gres/gpu:1g.10gb=2` is
    1 + 2/7). Without a total, typed entries that are not slices count whole.

    A slice can only be recognised when Slurm tracks its type (AccountingStorageTRES lists
    `gres/gpu:<type>`, slurm.conf(5)); a bare `gres/gpu=7` from a MIG node counts 7.
    Raises UnknownSliceProfile naming a slice profile that `profiles` does not list.
    """
    profiles = MIG_PROFILES if profiles is None else profiles
    lowered = {name.lower(): share for name, share in profiles.items()}
    items = typed_counts.items() if isinstance(typed_counts, Mapping) else typed_counts
    whole_typed = slices = 0
    share = 0.0
    for gpu_type, count in items:
        profile = mig_profile(gpu_type)
        if profile is None:
            whole_typed += count
        else:
            slices += count
            share += count * _slice_share(gpu_type, profile, lowered)
    whole = whole_typed if untyped_count is None else max(untyped_count - slices, 0)
    return whole + share


# What a GPU field says: (whole GPUs, typed entries, gres/gpu units), or None when it lists
# no GPU entry at all (a CPU job's `cpu=4,mem=8G,node=1`).
_GpuReading = tuple[int, tuple[tuple[str, int], ...], int]
_NO_GPUS: _GpuReading = (0, (), 0)


def _gpu_count(name: str, count: str) -> int:
    if not _is_number(count):
        raise ValueError(f"{name}={_shown(count)[1:-1]} is not a whole number")
    if len(count) > _DIGITS_LIMIT:
        raise ValueError(f"{name}={count[:20]}... is out of range")
    return int(count)


def _gpu_reading(total: int | None, typed: dict[str, int]) -> _GpuReading:
    types = tuple(typed.items())
    slices = sum(count for name, count in types if mig_profile(name) is not None)
    # with a total, the slices are among its units; without one, each typed entry is its own
    whole = max(total - slices, 0) if total is not None else sum(c for _, c in types) - slices
    return (whole, types, whole + slices)


@lru_cache(maxsize=4096)
def _tres_gpus(text: str) -> _GpuReading | None:
    if "gres/gpu" not in text:
        return None
    total: int | None = None
    typed: dict[str, int] = {}
    for item in text.split(","):
        name, _, count = item.partition("=")
        if name == "gres/gpu":
            total = _gpu_count(name, count)
        elif name.startswith("gres/gpu:"):
            gpu_type = name[9:]
            typed[gpu_type] = typed.get(gpu_type, 0) + _gpu_count(name, count)
    if total is None and not typed:
        return None  # gres/gpumem, gres/gpuutil: about GPUs, but no count of them
    return _gpu_reading(total, typed)


def parse_alloc_tres_gpus(text: str) -> int:
    """Whole scheduler GPUs in a Slurm TRES string (`AllocTRES`, `ReqTRES`) such as
    `billing=19,cpu=1,gres/gpu:a100=1,gres/gpu=1`.

    Slurm lists the typed count (`gres/gpu:a100=1`) next to the total (`gres/gpu=1`) for the
    same devices, so the total alone is the answer; typed entries are summed only when no total
    is listed. MIG slices (`gres/gpu:1g.10gb=7`) are not whole GPUs and are left out: see
    `gpu_equivalents`. `gres/gpumem`, `gres/gpuutil`, `gres/shard` and `gres/mps` are not
    GPUs. Raises ValueError when a GPU count is not a whole number.
    """
    reading = _tres_gpus(text) if len(text) <= _CACHED_TEXT_LIMIT else _tres_gpus.__wrapped__(text)
    return 0 if reading is None else reading[0]


@lru_cache(maxsize=4096)
def _gres_gpus(text: str) -> _GpuReading | None:
    if "gpu" not in text:
        return None
    if "(" in text:  # `gpu:2(IDX:0,2)`: device indexes, which hold commas of their own
        first, *rest = text.split("(")
        text = first + "".join(piece.partition(")")[2] for piece in rest)
    total: int | None = None
    typed: dict[str, int] = {}
    for item in text.split(","):
        parts = item.strip().split(":")
        if parts[0] == "gres":  # `gres:gpu:2`, as scontrol writes TresPerNode
            parts = parts[1:]
        if parts[0].removeprefix("gres/") != "gpu":
            continue
        rest = [part for part in parts[1:] if part and part != "no_consume"]
        count = 1  # `--gres=gpu` asks for one
        if rest and _is_number(rest[-1]):
            count = _gpu_count("gpu", rest.pop())
        if not rest:
            total = (total or 0) + count
        elif len(rest) == 1:
            typed[rest[0]] = typed.get(rest[0], 0) + count
        else:
            raise ValueError(f"{_shown(item)} is not a GPU entry (gpu[:type]:count)")
    if total is None and not typed:
        return None
    return _gpu_reading(total, typed)


def parse_alloc_gres_gpus(text: str) -> int:
    """Whole scheduler GPUs in a Slurm GRES string (`AllocGRES`, `ReqGRES`, which older Slurm
    prints instead of TRES): `gpu:2`, `gpu:tesla:2`, `gpu:2(IDX:0-1)`, several joined by
    commas; the same rules as `parse_alloc_tres_gpus`."""
    reading = _gres_gpus(text) if len(text) <= _CACHED_TEXT_LIMIT else _gres_gpus.__wrapped__(text)
    return 0 if reading is None else reading[0]


@lru_cache(maxsize=4096)
def _tres_nodes(text: str) -> int:
    for item in text.split(","):
        if item.startswith("node="):
            count = item[5:]
            return int(count) if _is_number(count) and len(count) <= _DIGITS_LIMIT else 0
    return 0
