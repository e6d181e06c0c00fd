"""Drift check: what Slurm holds for one cluster against what hpcgate says it should hold.

Pure functions, no Django. Slurm's side is the text of

    sacctmgr -nP show assoc where cluster=<cluster> format=Cluster,Account,User,QOS,DefaultQOS,\
GrpTRESMins,GrpSubmitJobs
    sacctmgr -nP show qos format=Name,Flags,GrpTRESMins

(``ASSOCIATION_COMMAND`` and ``QOS_COMMAND``), with or without the header line that ``-n``
leaves out; with a header the columns may come in any order. hpcgate's side is the
``SlurmAccount`` values of the export. ``differences(...)`` returns one ``Difference`` per thing
that is not as it should be, each carrying the ``sacctmgr`` commands that put it right;
``render_repair`` turns them into a ``/bin/sh`` script like the ``commands`` export.

What is compared, per account hpcgate knows: the association exists; its QOS list is exactly its
budget QOS, which is also its default QOS; its users are exactly the allocation's users, each with
that QOS too (a user association given another QOS by hand would run outside the budget); it is
blocked (``GrpSubmitJobs=0``) exactly when hpcgate blocks it; it carries no ``gres/gpu`` limit of
its own (the QOS holds the budget). With the QOS listing: the budget QOS exists, has
``Flags=NoDecay`` and ``GrpTRESMins=gres/gpu`` equal to the grant. Accounts Slurm has and hpcgate
does not are reported and left alone: they may be the site's own.
"""

from __future__ import annotations

import fnmatch
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

from allocations.slurm import (
    BUDGET_QOS_FLAGS,
    AccountState,
    SlurmAccount,
    account_add_command,
    account_qos_settings,
    account_set_command,
    account_states,
    qos_add_command,
    qos_set_command,
    shell_script,
    user_add_command,
    user_remove_command,
    user_set_command,
)

__all__ = [
    "ASSOCIATION_FIELDS",
    "QOS_FIELDS",
    "Difference",
    "DriftInputError",
    "association_command",
    "differences",
    "QOS_COMMAND",
    "render_repair",
]

ASSOCIATION_FIELDS = (
    "Cluster",
    "Account",
    "User",
    "QOS",
    "DefaultQOS",
    "GrpTRESMins",
    "GrpSubmitJobs",
)
QOS_FIELDS = ("Name", "Flags", "GrpTRESMins")
QOS_COMMAND = ["sacctmgr", "-n", "-P", "show", "qos", "format=" + ",".join(QOS_FIELDS)]
# Accounts Slurm makes itself.
_SLURM_ACCOUNTS = frozenset({"root"})
# Header spellings of `sacctmgr -P show assoc|qos` (lower case, spaces removed) -> field.
_HEADER_NAMES = {
    "cluster": "Cluster",
    "account": "Account",
    "user": "User",
    "qos": "QOS",
    "defqos": "DefaultQOS",
    "defaultqos": "DefaultQOS",
    "grptresmins": "GrpTRESMins",
    "grpsubmit": "GrpSubmitJobs",
    "grpsubmitjobs": "GrpSubmitJobs",
    "name": "Name",
    "flags": "Flags",
}


class DriftInputError(ValueError):
    """The sacctmgr output cannot be read; the message names the line."""


@dataclass(frozen=True)
class Difference:
    """One way Slurm differs from hpcgate: a line for people, the commands that repair it."""

    account: str
    message: str
    commands: tuple[tuple[str, ...], ...] = ()

    @property
    def line(self) -> str:
        return f"account {self.account}: {self.message}"


@dataclass
class _Association:
    qos: tuple[str, ...] = ()
    default_qos: str = ""
    gpu_minutes: str | None = None
    submit_jobs: str = ""


@dataclass
class _Account:
    association: _Association | None = None
    users: dict[str, _Association] = field(default_factory=dict)


@dataclass(frozen=True)
class _Qos:
    flags: frozenset[str]
    gpu_minutes: str | None


def association_command(cluster: str) -> list[str]:
    """The ``sacctmgr`` command whose output ``differences`` reads for ``cluster``."""
    return [
        *("sacctmgr", "-n", "-P", "show", "assoc", "where", f"cluster={cluster}"),
        "format=" + ",".join(ASSOCIATION_FIELDS),
    ]


def differences(
    cluster: str,
    accounts: Iterable[SlurmAccount],
    association_text: str,
    qos_text: str | None = None,
    ignore: Sequence[str] = (),
) -> list[Difference]:
    """Every difference between Slurm (the sacctmgr outputs) and ``accounts``, in account order.

    ``qos_text`` None: the QOS themselves are not compared (their use by the associations is).
    ``ignore``: shell patterns of account names Slurm may have that hpcgate does not know.
    """
    observed = _read_associations(cluster, association_text)
    qos = _read_qos(qos_text) if qos_text is not None else None
    expected = account_states(accounts)
    found: list[Difference] = []
    for name in sorted(expected.keys() | observed.keys()):
        if name not in expected:
            if not any(fnmatch.fnmatchcase(name, pattern) for pattern in ignore):
                found.append(Difference(name, "not in hpcgate (left alone)"))
            continue
        found.extend(_account_differences(cluster, name, expected[name], observed.get(name), qos))
    return found


def render_repair(cluster: str, found: Iterable[Difference]) -> str:
    """``/bin/sh`` script of the repairs, in the order of the differences, each command once."""
    commands: list[list[str]] = []
    seen: set[tuple[str, ...]] = set()
    for difference in found:
        for command in difference.commands:
            if command not in seen:
                seen.add(command)
                commands.append(list(command))
    return shell_script(f"sacctmgr repairs for cluster {cluster}", commands, empty="no repairs")


def _account_differences(
    cluster: str,
    name: str,
    want: AccountState,
    have: _Account | None,
    qos: dict[str, _Qos] | None,
) -> list[Difference]:
    found: list[Difference] = []

    def differ(message: str, *commands: list[str]) -> None:
        found.append(Difference(name, message, tuple(tuple(c) for c in commands)))

    limit = f"GrpTRESMins=gres/gpu={want.gpu_minutes}"
    # The budget first: an account that is repaired must never be open without it.
    if qos is not None:
        budget = qos.get(name)
        if budget is None:
            differ(f"QOS {name} is missing", qos_add_command(name, want.gpu_minutes))
        else:
            if BUDGET_QOS_FLAGS not in budget.flags:
                flags = ",".join(sorted(budget.flags)) or "none"
                differ(
                    f"QOS {name} lacks Flags={BUDGET_QOS_FLAGS} (has {flags})",
                    qos_set_command(name, f"Flags+={BUDGET_QOS_FLAGS}"),
                )
            if budget.gpu_minutes != str(want.gpu_minutes):
                differ(
                    f"QOS {name} has GrpTRESMins gres/gpu={budget.gpu_minutes or 'none'}, "
                    f"hpcgate grants {want.gpu_minutes}",
                    qos_set_command(name, limit),
                )

    if have is None or have.association is None:
        differ(
            "missing",
            account_add_command(cluster, name, want),
            *(user_add_command(cluster, name, user) for user in want.users),
        )
        return found
    account = have.association

    blocked = account.submit_jobs == "0"
    if want.blocked and not blocked:
        differ(
            "open, hpcgate says blocked (GrpSubmitJobs=0)",
            account_set_command(cluster, name, "GrpSubmitJobs=0"),
        )
    if account.qos != (name,):
        differ(
            f"QOS is {_names(account.qos)}, hpcgate expects {name}",
            account_set_command(cluster, name, *account_qos_settings(name)),
        )
    if account.default_qos != name:
        differ(
            f"default QOS is {account.default_qos or 'none'}, hpcgate expects {name}",
            account_set_command(cluster, name, *account_qos_settings(name)),
        )
    for user in sorted(have.users.keys() - set(want.users)):
        differ(f"user {user} is not in hpcgate", user_remove_command(cluster, name, user))
    for user in sorted(have.users.keys() & set(want.users)):
        association = have.users[user]
        if association.qos != (name,) or association.default_qos != name:
            differ(
                f"user {user} has QOS {_names(association.qos)} "
                f"(default {association.default_qos or 'none'}), hpcgate expects {name}",
                user_set_command(cluster, name, user, *account_qos_settings(name)),
            )
    if account.gpu_minutes is not None:
        differ(
            f"GrpTRESMins gres/gpu={account.gpu_minutes} on the account itself, hpcgate keeps "
            f"the budget on QOS {name} only",
            account_set_command(cluster, name, "GrpTRESMins=gres/gpu=-1"),
        )
    for user in sorted(set(want.users) - have.users.keys()):
        differ(f"user {user} is missing", user_add_command(cluster, name, user))
    if blocked and not want.blocked:
        differ(
            "blocked (GrpSubmitJobs=0), hpcgate says open",
            account_set_command(cluster, name, "GrpSubmitJobs=-1"),
        )
    return found


def _names(values: tuple[str, ...]) -> str:
    return ",".join(values) or "none"


def _rows(text: str, fields: tuple[str, ...], what: str) -> Iterable[tuple[int, dict[str, str]]]:
    """(line number, {field: value}) for each data line of ``sacctmgr -P`` output."""
    columns: tuple[str, ...] | None = None
    for number, raw in enumerate(text.splitlines(), start=1):
        line = raw.rstrip("\r")
        if not line.strip():
            continue
        values = line.split("|")
        if columns is None:
            header = [_HEADER_NAMES.get(v.strip().lower().replace(" ", "")) for v in values]
            if all(header) and set(fields) <= set(header):
                columns = tuple(header)  # type: ignore[arg-type]
                continue
            columns = fields
        if len(values) != len(columns):
            raise DriftInputError(
                f"{what} line {number}: {len(values)} fields, expected {len(columns)} "
                f"({','.join(columns)})"
            )
        yield number, dict(zip(columns, (v.strip() for v in values), strict=True))


def _gpu_minutes(value: str, where: str) -> str | None:
    """The ``gres/gpu`` entry of a TRES list such as ``cpu=10,gres/gpu=60``, or None."""
    for item in filter(None, value.split(",")):
        key, separator, amount = item.partition("=")
        if not separator:
            raise DriftInputError(f"{where}: cannot read the TRES list {value!r}")
        if key == "gres/gpu":
            return amount
    return None


def _read_associations(cluster: str, text: str) -> dict[str, _Account]:
    accounts: dict[str, _Account] = {}
    other_clusters: set[str] = set()
    for number, row in _rows(text, ASSOCIATION_FIELDS, "association"):
        if row["Cluster"] != cluster:
            other_clusters.add(row["Cluster"])
            continue
        name, user = row["Account"], row["User"]
        if not name or name in _SLURM_ACCOUNTS:
            continue
        association = _Association(
            qos=tuple(sorted(filter(None, row["QOS"].split(",")))),
            default_qos=row["DefaultQOS"],
            gpu_minutes=_gpu_minutes(row["GrpTRESMins"], f"association line {number}"),
            submit_jobs=row["GrpSubmitJobs"],
        )
        account = accounts.setdefault(name, _Account())
        if user:
            account.users[user] = association
        else:
            account.association = association
    if not accounts and other_clusters:
        raise DriftInputError(
            f"the association listing has no account of cluster {cluster}, only of "
            f"{', '.join(sorted(other_clusters))}"
        )
    return accounts


def _read_qos(text: str) -> dict[str, _Qos]:
    return {
        row["Name"]: _Qos(
            flags=frozenset(filter(None, row["Flags"].split(","))),
            gpu_minutes=_gpu_minutes(row["GrpTRESMins"], f"QOS line {number}"),
        )
        for number, row in _rows(text, QOS_FIELDS, "QOS")
        if row["Name"]
    }
