"""Render approved GPU allocations for Slurm's accounting database.

Pure functions, no Django: the export command turns allocations into ``SlurmAccount`` values and
calls one of

- ``render_load_file(cluster, accounts)`` - a flat file for ``sacctmgr load file=<cluster>.cfg``,
  headed by the QOS commands to run before the load;
- ``render_commands(cluster, previous, accounts)`` - a ``/bin/sh`` script of ``sacctmgr -i ...``
  commands taking the cluster from the ``snapshot(...)`` stored with the previous export to now.

Each account's grant is a hard budget: a QOS of the account's own name with ``Flags=NoDecay`` and
``GrpTRESMins=gres/gpu=<GPU-minutes>``, attached as the account's only QOS and its default QOS.
``priority/multifactor`` halves the usage behind an association's ``GrpTRESMins`` every
``PriorityDecayHalfLife``, so a limit on the account itself lets a project run far past its
grant; a NoDecay QOS's usage never decays, while fair share (the associations' usage) still does.
Blocks stay on the account (``GrpSubmitJobs=0``), where a flat file can set them too.
docker/slurm-test/FINDINGS.md records the commands and outputs this rests on.

Flat-file lines (the layout ``sacctmgr dump`` writes, see ``_print_file_*`` in
SchedMD/slurm ``src/sacctmgr/file_functions.c``)::

    #qos sacctmgr -i modify qos where name=acme_llm set Flags=NoDecay GrpTRESMins=... || ...
    Cluster - 'lumi'
    Parent - 'root'
    Account - 'acme_llm':Description='Legal LLM':Organization='Acme AI Oy':QOS=...:DefaultQOS=...
    Account - 'beta_ai':Description='..':Organization='..':QOS=...:DefaultQOS=...:GrpSubmitJobs=0
    Parent - 'acme_llm'
    User - 'alice'
    User - 'bob'

``sacctmgr load`` cannot create or change a QOS (a ``QOS -`` line fails the whole load), so the
file starts with comment lines ``#qos <command>`` that create or update every budget QOS; they
must run first (``sed -n 's/^#qos //p' FILE | sh -e``), since ``QOS=`` naming a missing QOS
fails the load as well. For an account that already exists, ``load`` applies a changed ``QOS=``
but ignores a changed ``DefaultQOS=``: only ``render_commands`` moves existing accounts.

How ``sacctmgr load`` reads that file decides what free text may contain (same source file):
``_strip_comments`` cuts the line at the first ``#`` (even inside quotes); ``_strip_escapes`` and
``_strip_continuation`` treat ``\\`` as an escape and a trailing ``\\`` as "join the next line";
``_parse_options`` splits specs on ``:`` and opens quotes on ``'`` or ``"``; lines are read with
``fgets`` into a 4096-byte buffer. So ``clean_text`` removes quotes, ``:``, ``#``, ``\\``, ``=``,
``|`` and every control/line-separator character, and caps the length; names are never cleaned,
only validated (``allocations.names``: letters, digits, ``_``, ``.`` and ``-``, none of which
needs escaping inside the flat file's quotes or in a shell word; ``ec110-guest`` and
``SCSG0001`` are written as given, and Slurm folds account names to lower case itself).
Slurm stores Description and Organization in lower case (``strip_quotes(..., make_lower)`` in
``src/sacctmgr/common.c``), so compare them case-insensitively with a dump.
"""

from __future__ import annotations

import re
import shlex
import unicodedata
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, replace
from decimal import ROUND_FLOOR, Decimal

from allocations.names import account_name_problem, user_name_problem

__all__ = [
    "BUDGET_QOS_FLAGS",
    "CLUSTER_NAME_RE",
    "MAX_TEXT_LENGTH",
    "QOS_LINE_PREFIX",
    "RESERVED_QOS",
    "SNAPSHOT_VERSION",
    "AccountState",
    "SlurmAccount",
    "account_add_command",
    "account_qos_settings",
    "account_set_command",
    "account_states",
    "clean_text",
    "commands_between",
    "gpu_hours_to_minutes",
    "parse_load_file",
    "qos_add_command",
    "qos_set_command",
    "render_commands",
    "render_load_file",
    "shell_script",
    "snapshot",
    "snapshot_after_load",
    "user_add_command",
    "user_remove_command",
    "user_set_command",
]

# \A..\Z rather than ^..$: "$" also matches before a trailing newline, which would let "acme\n"
# through and split a flat-file line in two.
CLUSTER_NAME_RE = re.compile(r"\A[a-z][a-z0-9_]{0,62}\Z")

# 200 characters are at most 800 UTF-8 bytes, so an Account line with both texts stays far below
# the 4096-byte line buffer of `sacctmgr load`; a longer line would be read as two lines.
MAX_TEXT_LENGTH = 200
# Version 1 snapshots come from exports made before the budgets moved to a QOS per account;
# their accounts carried GrpTRESMins themselves, and the next commands export moves them.
SNAPSHOT_VERSION = 2
_READABLE_SNAPSHOT_VERSIONS = (1, 2)

# NoDecay: the QOS's usage (what GrpTRESMins is checked against) is never halved by
# PriorityDecayHalfLife, so a grant stays a budget over the whole allocation window.
BUDGET_QOS_FLAGS = "NoDecay"
# Slurm's own default QOS: a budget QOS of that name would be shared by every account using it.
RESERVED_QOS = frozenset({"normal"})
# Flat-file comment lines carrying the QOS commands that must run before `sacctmgr load`.
QOS_LINE_PREFIX = "#qos "
# Where an account's GPU-minute limit sits in Slurm: see AccountState.
BUDGET_ON_QOS = "qos"
BUDGET_ON_ACCOUNT = "account"
BUDGET_LOADED = "loaded"
_BUDGETS = (BUDGET_ON_QOS, BUDGET_ON_ACCOUNT, BUDGET_LOADED)

# Slurm keeps GPU-minute limits as uint64 with the top values reserved for "unset"/"infinite".
_MAX_GPU_MINUTES = 2**63 - 1
# The cluster's root association; an hpcgate account of that name would collide with it.

# ' and " open quotes, : separates specs, # starts a comment, \ escapes or continues the line
# (all in sacctmgr's file parser); a value that starts with = is read as the "+=/-=" operator
# form on the command line and loses its first character; | is the field separator of
# `sacctmgr -P` output that operators and scripts parse.
_SPECIAL_CHARACTERS = frozenset("'\":#\\=|")


@dataclass(frozen=True)
class SlurmAccount:
    """One Slurm account (bank account) with its GPU-minute limit and members.

    ``description`` and ``organization`` are free text typed by people and may contain anything;
    they are cleaned when rendered. Names are validated here and never altered; ``users`` is
    stored sorted and without duplicates.
    """

    name: str
    description: str
    organization: str
    gpu_minutes: int
    users: tuple[str, ...] = ()
    blocked: bool = False

    def __post_init__(self) -> None:
        _check_account_name(self.name)
        for field_name in ("description", "organization"):
            if not isinstance(getattr(self, field_name), str):
                raise TypeError(f"Slurm account {self.name!r}: {field_name} must be a string")
        if isinstance(self.users, str):
            raise TypeError(f"Slurm account {self.name!r}: users must be a sequence of names")
        users = tuple(self.users)
        for user in users:
            _check_user_name(user, account=self.name)
        object.__setattr__(self, "users", tuple(sorted(set(users))))
        minutes = self.gpu_minutes
        if isinstance(minutes, bool) or not isinstance(minutes, int):
            raise TypeError(f"Slurm account {self.name!r}: gpu_minutes must be an integer")
        if not 0 <= minutes <= _MAX_GPU_MINUTES:
            raise ValueError(
                f"Slurm account {self.name!r}: gpu_minutes must be between 0 and "
                f"{_MAX_GPU_MINUTES}, got {minutes}"
            )
        if not isinstance(self.blocked, bool):
            raise TypeError(f"Slurm account {self.name!r}: blocked must be True or False")


@dataclass(frozen=True)
class AccountState:
    """What Slurm should hold for one account: the unit both renderers and the diff compare.

    ``budget`` says where the GPU-minutes sit: ``BUDGET_ON_QOS`` on the account's own NoDecay QOS,
    attached as its QOS and default QOS (every export since snapshot version 2);
    ``BUDGET_ON_ACCOUNT`` on the association itself (accounts exported before);
    ``BUDGET_LOADED`` for such an account after a flat-file load: the QOS exists and is its QOS,
    but ``load`` could neither make it the default QOS nor clear the association's own limit.
    """

    description: str
    organization: str
    gpu_minutes: int
    blocked: bool
    users: tuple[str, ...]
    budget: str = "qos"


def gpu_hours_to_minutes(gpu_hours: int | Decimal | float) -> int:
    """GPU-hours granted -> whole GPU-minutes for ``GrpTRESMins=gres/gpu=<minutes>``.

    Rounds down so the limit never exceeds what was approved.
    """
    if isinstance(gpu_hours, bool):
        raise TypeError("gpu_hours must be a number")
    hours = Decimal(str(gpu_hours)) if isinstance(gpu_hours, float) else Decimal(gpu_hours)
    if not hours.is_finite() or hours < 0:
        raise ValueError(f"gpu_hours must be a finite number >= 0, got {gpu_hours!r}")
    return int((hours * 60).to_integral_value(rounding=ROUND_FLOOR))


def clean_text(value: str | None) -> str:
    """Make free text safe as a quoted sacctmgr value, in the flat file and on the command line.

    NFC-normalises; replaces quotes, ``:``, ``#``, ``\\``, ``=``, ``|``, control and format
    characters and line/paragraph separators with a space; collapses whitespace runs; strips;
    caps at ``MAX_TEXT_LENGTH`` characters. Letters of any script are kept.
    """
    if value is None:
        return ""
    if not isinstance(value, str):
        raise TypeError(f"clean_text expects a string, got {type(value).__name__}")
    characters = []
    for character in unicodedata.normalize("NFC", value):
        category = unicodedata.category(character)
        if (
            character in _SPECIAL_CHARACTERS
            or character.isspace()
            or category[0] == "C"
            or category in ("Zl", "Zp")
        ):
            characters.append(" ")
        else:
            characters.append(character)
    collapsed = " ".join("".join(characters).split())
    return collapsed[:MAX_TEXT_LENGTH].rstrip()


def render_load_file(cluster: str, accounts: Iterable[SlurmAccount]) -> str:
    """Flat file for ``sacctmgr load file=<cluster>.cfg``: same input, same bytes.

    A comment header says how to use the file, then one ``#qos `` line per account creating or
    updating its budget QOS (``modify ... || add ...``, so it can run any number of times).
    Then accounts sorted by name under ``Parent - 'root'``, each naming its QOS as ``QOS`` and
    ``DefaultQOS``; then, for every account with users, a ``Parent - '<account>'`` block of
    sorted ``User - '<user>'`` lines (``sacctmgr dump`` also leaves out Parent blocks without
    children). ``:GrpSubmitJobs=0`` marks a blocked account.

    ``sacctmgr load`` only adds and modifies: it never removes users and, like a dump, this file
    never clears ``GrpSubmitJobs``, so unblocking and removals need ``render_commands``.
    """
    _check_cluster_name(cluster)
    states = account_states(accounts)
    lines = [
        f"# hpcgate: sacctmgr load file for cluster {cluster}",
        "# Each account's GPU budget is a QOS of its own (Flags=NoDecay: its used GPU-minutes",
        "# never decay). sacctmgr load cannot create or change a QOS, so run the lines that",
        "# start with '#qos ' before loading the file:",
        "#   sed -n 's/^#qos //p' THIS_FILE | sh -e && sacctmgr -i load file=THIS_FILE",
    ]
    for name, state in states.items():
        lines.append(QOS_LINE_PREFIX + _qos_upsert_line(name, state.gpu_minutes))
    lines.extend([f"Cluster - '{cluster}'", "Parent - 'root'"])
    for name, state in states.items():
        line = (
            f"Account - '{name}'"
            f":Description='{state.description}'"
            f":Organization='{state.organization}'"
            f":QOS='{name}'"
            f":DefaultQOS='{name}'"
        )
        if state.blocked:
            line += ":GrpSubmitJobs=0"
        lines.append(line)
    for name, state in states.items():
        if state.users:
            lines.append(f"Parent - '{name}'")
            lines.extend(f"User - '{user}'" for user in state.users)
    return "\n".join(lines) + "\n"


def snapshot(accounts: Iterable[SlurmAccount]) -> dict:
    """JSON-safe state of one cluster's export: store it, pass it as ``previous`` next time.

    Holds the cleaned texts actually sent to Slurm, so the next diff compares like with like.
    """
    return _snapshot_of(account_states(accounts))


def snapshot_after_load(previous: Mapping | None, accounts: Iterable[SlurmAccount]) -> dict:
    """What Slurm holds after the ``#qos`` lines and ``sacctmgr load`` of this file on top of
    ``previous`` (a ``snapshot``), as a snapshot.

    ``load`` only adds and modifies: users removed here stay in Slurm, a block is never lifted,
    and accounts left out keep what they had. Recording that, rather than the file itself, lets
    the next ``commands`` export remove those users and lift those blocks.
    """
    merged = _previous_states(previous)
    for name, state in account_states(accounts).items():
        before = merged.get(name)
        if before is not None:
            state = replace(
                state,
                users=tuple(sorted(set(before.users) | set(state.users))),
                blocked=state.blocked or before.blocked,
                budget=BUDGET_ON_QOS if before.budget == BUDGET_ON_QOS else BUDGET_LOADED,
            )
        merged[name] = state
    return _snapshot_of(dict(sorted(merged.items())))


def _snapshot_of(states: Mapping[str, AccountState]) -> dict:
    return {
        "version": SNAPSHOT_VERSION,
        "accounts": {
            name: {
                "description": state.description,
                "organization": state.organization,
                "gpu_minutes": state.gpu_minutes,
                "blocked": state.blocked,
                "users": list(state.users),
                "budget": state.budget,
            }
            for name, state in states.items()
        },
    }


def render_commands(
    cluster: str, previous: Mapping | None, accounts: Iterable[SlurmAccount]
) -> str:
    """``/bin/sh`` script of ``sacctmgr -i`` commands from ``previous`` (a ``snapshot``) to now.

    ``previous=None`` means nothing was exported yet: every account is new. The script always
    starts with ``#!/bin/sh``, a comment naming the cluster and ``set -e`` (stop at the first
    failing command), so it is valid and harmless to run even when nothing changed; it then holds
    one ``# no changes`` comment and no command. Every argument goes through ``shlex.quote``.

    Accounts come in name order (including accounts gone since ``previous``). A new account
    gets its budget QOS first, then the account naming it as QOS and default QOS (blocked from
    the start when it must be), then its users. Within an existing account: block; remove users;
    change the budget (or move it from the account to a new QOS, for accounts exported before
    QOS budgets); change description/organisation; add users; unblock. Steps that take access
    away run before steps that grant it, so a script stopped half-way by ``set -e`` leaves an
    account closed rather than open, and never open without its budget.

    An account present in ``previous`` but absent now is blocked with ``GrpSubmitJobs=0``, never
    deleted: deleting its association would lose the usage history that accounting, reports and
    compute-threshold checks depend on, and Slurm refuses to delete associations with jobs.
    """
    commands = commands_between(cluster, previous, accounts)
    return shell_script(f"sacctmgr changes for cluster {cluster}", commands, empty="no changes")


def commands_between(
    cluster: str, previous: Mapping | None, accounts: Iterable[SlurmAccount]
) -> list[list[str]]:
    """The argument lists of ``render_commands``, in its order."""
    _check_cluster_name(cluster)
    before = _previous_states(previous)
    now = account_states(accounts)
    commands: list[list[str]] = []
    for name in sorted(before.keys() | now.keys()):
        commands.extend(_account_commands(cluster, name, before.get(name), now.get(name)))
    return commands


def shell_script(heading: str, commands: Iterable[list[str]], *, empty: str) -> str:
    """``#!/bin/sh``, ``# hpcgate: <heading>``, ``set -e``, then one quoted command a line (or
    ``# <empty>`` when there is none)."""
    lines = ["#!/bin/sh", f"# hpcgate: {heading}", "set -e"]
    lines.extend(shlex.join(argv) for argv in commands)
    if len(lines) == 3:
        lines.append(f"# {empty}")
    return "\n".join(lines) + "\n"


def parse_load_file(text: str) -> dict:
    """Read a flat file back: what ``render_load_file`` writes, and ``sacctmgr dump`` output.

    Returns ``{"cluster": str, "cluster_options": {...}, "root_users": [...], "accounts": {name:
    {"Description", "Organization", "GrpTRESMins", "GrpSubmitJobs", ..., "parent", "users"}}}``.
    Values are returned as written (quotes removed, case kept); absent known options are None.
    Follows sacctmgr's rules where they matter for injection - ``#`` starts a comment anywhere,
    specs split on ``:`` outside quotes - and is stricter elsewhere: a line it does not
    understand raises ``ValueError`` naming its line number.
    """
    cluster: str | None = None
    cluster_options: dict[str, str] = {}
    accounts: dict[str, dict] = {}
    root_users: list[str] = []
    parent = "root"
    for number, raw_line in enumerate(text.split("\n"), start=1):
        if "\\" in raw_line:
            raise ValueError(f"line {number}: backslash escapes are not supported")
        line = raw_line.split("#", 1)[0]
        if not line.strip():
            continue
        if any(unicodedata.category(character)[0] == "C" for character in line):
            raise ValueError(f"line {number}: control character in {line!r}")
        match = _LINE_RE.fullmatch(line)
        if match is None:
            raise ValueError(f"line {number}: not a Cluster, Parent, Account or User line")
        kind, rest = match.groups()
        name, options = _parse_specs(rest, number)
        if kind == "Cluster":
            if cluster is not None:
                raise ValueError(f"line {number}: only one Cluster line is allowed")
            cluster, cluster_options = name, options
            continue
        if cluster is None:
            raise ValueError(f"line {number}: the file must start with a Cluster line")
        if kind == "Parent":
            if options:
                raise ValueError(f"line {number}: a Parent line takes no options")
            if name != "root" and name not in accounts:
                raise ValueError(f"line {number}: parent {name!r} is not defined above")
            parent = name
        elif kind == "Account":
            if name in accounts:
                raise ValueError(f"line {number}: account {name!r} is defined twice")
            account: dict = dict.fromkeys(_KNOWN_ACCOUNT_OPTIONS)
            account.update(options)
            account["parent"] = parent
            account["users"] = []
            accounts[name] = account
        else:
            members = root_users if parent == "root" else accounts[parent]["users"]
            if name in members:
                raise ValueError(f"line {number}: user {name!r} is listed twice under {parent!r}")
            members.append(name)
    if cluster is None:
        raise ValueError("no Cluster line found")
    return {
        "cluster": cluster,
        "cluster_options": cluster_options,
        "root_users": root_users,
        "accounts": accounts,
    }


_LINE_RE = re.compile(r"(Cluster|Parent|Account|User) - (.+)")
_OPTION_KEY_RE = re.compile(r"[A-Za-z]+")
_KNOWN_ACCOUNT_OPTIONS = (
    "Description",
    "Organization",
    "GrpTRESMins",
    "GrpSubmitJobs",
    "QOS",
    "DefaultQOS",
)
# sacctmgr matches option names case-insensitively; GrpSubmit, QosLevel and DefQOS are its
# documented aliases.
_CANONICAL_OPTION_NAMES = {
    "description": "Description",
    "organization": "Organization",
    "grptresmins": "GrpTRESMins",
    "grpsubmitjobs": "GrpSubmitJobs",
    "grpsubmit": "GrpSubmitJobs",
    "qos": "QOS",
    "qoslevel": "QOS",
    "defaultqos": "DefaultQOS",
    "defqos": "DefaultQOS",
}


def _parse_specs(rest: str, number: int) -> tuple[str, dict[str, str]]:
    specs = _split_specs(rest, number)
    name_spec, option_specs = specs[0], specs[1:]
    # sacctmgr takes the first spec as the name only when it has no "=" (parse_option_end).
    if "=" in name_spec:
        raise ValueError(f"line {number}: the first spec must be a name, got {name_spec!r}")
    name = _unquote(name_spec, number)
    if not name:
        raise ValueError(f"line {number}: empty name")
    options: dict[str, str] = {}
    for spec in option_specs:
        key, separator, value = spec.partition("=")
        if not separator or not _OPTION_KEY_RE.fullmatch(key):
            raise ValueError(f"line {number}: expected Key=Value, got {spec!r}")
        if key.lower() in ("parent", "users"):
            raise ValueError(f"line {number}: option {key} is not allowed here")
        key = _CANONICAL_OPTION_NAMES.get(key.lower(), key)
        if key in options:
            raise ValueError(f"line {number}: option {key} given twice")
        options[key] = _unquote(value, number)
    return name, options


def _split_specs(rest: str, number: int) -> list[str]:
    specs: list[str] = []
    current: list[str] = []
    quote: str | None = None
    after_quote = False
    for character in rest:
        if quote is not None:
            current.append(character)
            if character == quote:
                quote, after_quote = None, True
            continue
        if character == ":":
            specs.append("".join(current))
            current, after_quote = [], False
            continue
        if after_quote:
            # sacctmgr silently stops reading the line here; refusing is the safe reading.
            raise ValueError(f"line {number}: text after a closing quote in {rest!r}")
        if character in "'\"":
            quote = character
        current.append(character)
    if quote is not None:
        raise ValueError(f"line {number}: unterminated quote in {rest!r}")
    specs.append("".join(current))
    if any(not spec for spec in specs):
        raise ValueError(f"line {number}: empty spec in {rest!r}")
    return specs


def _unquote(value: str, number: int) -> str:
    if value[:1] in ("'", '"'):
        inner = value[1:-1]
        if len(value) < 2 or value[-1] != value[0] or "'" in inner or '"' in inner:
            raise ValueError(f"line {number}: badly quoted value {value!r}")
        return inner
    if "'" in value or '"' in value:
        raise ValueError(f"line {number}: stray quote in {value!r}")
    return value


def _qos_settings(gpu_minutes: int) -> list[str]:
    return [f"Flags={BUDGET_QOS_FLAGS}", f"GrpTRESMins=gres/gpu={gpu_minutes}"]


def qos_add_command(name: str, gpu_minutes: int) -> list[str]:
    """``sacctmgr -i add qos`` making the budget QOS of account ``name``."""
    return ["sacctmgr", "-i", "add", "qos", f"name={name}", *_qos_settings(gpu_minutes)]


def qos_set_command(name: str, *settings: str) -> list[str]:
    return ["sacctmgr", "-i", "modify", "qos", "where", f"name={name}", "set", *settings]


def _qos_reset_command(name: str, gpu_minutes: int) -> list[str]:
    return qos_set_command(name, *_qos_settings(gpu_minutes))


def account_set_command(cluster: str, name: str, *settings: str) -> list[str]:
    where = ["where", f"name={name}", f"cluster={cluster}"]
    return ["sacctmgr", "-i", "modify", "account", *where, "set", *settings]


def account_qos_settings(name: str) -> list[str]:
    """The account's budget QOS as its only QOS and its default QOS."""
    return [f"QOS={name}", f"DefaultQOS={name}"]


def account_add_command(cluster: str, name: str, state: AccountState) -> list[str]:
    command = [
        *("sacctmgr", "-i", "add", "account", f"name={name}", f"cluster={cluster}"),
        "parent=root",
        f"Description={state.description}",
        f"Organization={state.organization}",
        *account_qos_settings(name),
    ]
    if state.blocked:
        command.append("GrpSubmitJobs=0")
    return command


def user_add_command(cluster: str, name: str, user: str) -> list[str]:
    membership = [f"name={user}", f"account={name}", f"cluster={cluster}"]
    return ["sacctmgr", "-i", "add", "user", *membership]


def user_remove_command(cluster: str, name: str, user: str) -> list[str]:
    user_where = ["where", f"name={user}", f"account={name}", f"cluster={cluster}"]
    return ["sacctmgr", "-i", "remove", "user", *user_where]


def user_set_command(cluster: str, name: str, user: str, *settings: str) -> list[str]:
    user_where = ["where", f"name={user}", f"account={name}", f"cluster={cluster}"]
    return ["sacctmgr", "-i", "modify", "user", *user_where, "set", *settings]


def _qos_upsert_line(name: str, gpu_minutes: int) -> str:
    # modify fails ("Nothing modified", exit 1) only when the QOS is missing; add then makes it.
    # When sacctmgr cannot reach slurmdbd both fail, and `sh -e` stops.
    modify = shlex.join(_qos_reset_command(name, gpu_minutes))
    return f"{modify} || {shlex.join(qos_add_command(name, gpu_minutes))}"


def _account_commands(
    cluster: str, name: str, before: AccountState | None, now: AccountState | None
) -> list[list[str]]:
    if now is None:
        # Gone since the last export: close it, keep the association and its usage history.
        if before is not None and not before.blocked:
            return [account_set_command(cluster, name, "GrpSubmitJobs=0")]
        return []

    if before is None:
        # The QOS first: the account never exists without its budget.
        return [
            qos_add_command(name, now.gpu_minutes),
            account_add_command(cluster, name, now),
            *(user_add_command(cluster, name, user) for user in now.users),
        ]

    commands: list[list[str]] = []
    if now.blocked and not before.blocked:
        commands.append(account_set_command(cluster, name, "GrpSubmitJobs=0"))
    for user in sorted(set(before.users) - set(now.users)):
        commands.append(user_remove_command(cluster, name, user))
    if before.budget == BUDGET_ON_ACCOUNT:
        # Exported before QOS budgets: make the QOS, attach it, and clear the association's own
        # limit, which the QOS's limit on the same TRES would hide anyway (-1 clears a limit).
        commands.append(qos_add_command(name, now.gpu_minutes))
    elif now.gpu_minutes != before.gpu_minutes:
        commands.append(qos_set_command(name, f"GrpTRESMins=gres/gpu={now.gpu_minutes}"))
    if before.budget != BUDGET_ON_QOS:
        commands.append(
            account_set_command(
                cluster, name, *account_qos_settings(name), "GrpTRESMins=gres/gpu=-1"
            )
        )
    texts = []
    if now.description != before.description:
        texts.append(f"Description={now.description}")
    if now.organization != before.organization:
        texts.append(f"Organization={now.organization}")
    if texts:
        commands.append(account_set_command(cluster, name, *texts))
    for user in sorted(set(now.users) - set(before.users)):
        commands.append(user_add_command(cluster, name, user))
    if before.blocked and not now.blocked:
        # -1 clears a limit in sacctmgr (man sacctmgr, GrpSubmitJobs).
        commands.append(account_set_command(cluster, name, "GrpSubmitJobs=-1"))
    return commands


def account_states(accounts: Iterable[SlurmAccount]) -> dict[str, AccountState]:
    """{name: what Slurm should hold} in name order, texts cleaned as they are sent."""
    states: dict[str, AccountState] = {}
    for account in accounts:
        if not isinstance(account, SlurmAccount):
            raise TypeError(f"expected SlurmAccount, got {type(account).__name__}")
        if account.name in states:
            raise ValueError(f"Slurm account {account.name!r} appears twice in one export")
        # Empty text would be dropped by sacctmgr, which then falls back to the account name.
        states[account.name] = AccountState(
            description=clean_text(account.description) or account.name,
            organization=clean_text(account.organization) or account.name,
            gpu_minutes=account.gpu_minutes,
            blocked=account.blocked,
            users=account.users,
        )
    return dict(sorted(states.items()))


def _previous_states(previous: Mapping | None) -> dict[str, AccountState]:
    if previous is None:
        return {}
    if not isinstance(previous, Mapping) or previous.get("version") not in (
        _READABLE_SNAPSHOT_VERSIONS
    ):
        raise ValueError(f"previous export is not a version {SNAPSHOT_VERSION} snapshot")
    version = previous["version"]
    entries = previous.get("accounts")
    if not isinstance(entries, Mapping):
        raise ValueError("previous export snapshot has no 'accounts' mapping")
    # The snapshot is stored data, and its names end up in shell commands: validate them again.
    states: dict[str, AccountState] = {}
    for name, entry in entries.items():
        try:
            account = SlurmAccount(
                name=name,
                description=entry["description"],
                organization=entry["organization"],
                gpu_minutes=entry["gpu_minutes"],
                users=tuple(entry["users"]),
                blocked=entry["blocked"],
            )
            budget = entry["budget"] if version >= 2 else BUDGET_ON_ACCOUNT
            if budget not in _BUDGETS:
                raise ValueError(f"unknown budget place {budget!r}")
        except (KeyError, TypeError, ValueError) as error:
            raise ValueError(f"previous export snapshot, account {name!r}: {error}") from error
        states[name] = AccountState(
            description=account.description,
            organization=account.organization,
            gpu_minutes=account.gpu_minutes,
            blocked=account.blocked,
            users=account.users,
            budget=budget,
        )
    return states


def _check_account_name(name: object) -> None:
    problem = account_name_problem(name)
    if problem:
        raise ValueError(problem)
    if name in RESERVED_QOS:
        raise ValueError(
            f"{name!r} is not a valid Slurm account name here: its budget QOS would be Slurm's "
            "default QOS of that name, shared by every account that uses it"
        )


def _check_user_name(name: object, *, account: str) -> None:
    problem = user_name_problem(name)
    if problem:
        raise ValueError(f"Slurm account {account!r}: {problem}")


def _check_cluster_name(name: object) -> None:
    if not isinstance(name, str) or not CLUSTER_NAME_RE.match(name):
        raise ValueError(
            f"Slurm cluster name {name!r} is not safe: use 1-63 characters a-z, 0-9 and _, "
            "starting with a letter"
        )
