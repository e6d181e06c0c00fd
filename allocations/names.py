"""What the scheduler accepts as an account or user name: the one rule every entry point checks.

Names travel into `sacctmgr` commands and flat files, so they are checked where they enter
(forms, the admin, the API, `import_allocations`) and again where they leave (the exports).

Account names are what sites really use: hyphens (`ec110-guest`), dots (`ai.lab`), underscores,
a digit first (`2024ai`), and upper case, which PBS keeps as typed (`qsub -A SCSG0001`).
Slurm stores account names in lower case (sacct(1): "The contents of Slurm's database are
maintained in lower case"), so `SCSG0001` and `scsg0001` are one Slurm account: names are
compared, and unique per cluster, by `account_key`. Refused are the characters that change how a
name is read where it goes: `,` separates a list in `sacctmgr ... name=a,b`; `:`, quotes, `#`,
`\\` and `=` are syntax of the `sacctmgr load` flat file; `|` is the field separator of
`sacct -P`; whitespace and control characters split or end a line. A name starts with a letter,
a digit or `_`: a leading `-` reads as a command-line option.
"""

import re

ACCOUNT_NAME_MAX_LENGTH = 63
ACCOUNT_NAME_RE = re.compile(r"\A[A-Za-z0-9_][A-Za-z0-9_.-]{0,62}\Z")
USER_NAME_RE = re.compile(r"\A[a-z_][a-z0-9_.-]{0,31}\Z")
RESERVED_ACCOUNTS = frozenset({"root"})

ACCOUNT_NAME_RULE = (
    "1-63 characters: letters, digits, '_', '.' and '-', starting with a letter, a digit or '_'"
)
USER_NAME_RULE = "1-32 characters a-z, 0-9, '_', '.' and '-', starting with a letter or '_'"

# Why a character cannot be in an account name, for the ones people are likely to try.
_REFUSED = {
    ",": "',' separates names in sacctmgr commands",
    ":": "':' separates the options of a sacctmgr flat-file line",
    "'": "quotes delimit names in the sacctmgr flat file",
    '"': "quotes delimit names in the sacctmgr flat file",
    "#": "'#' starts a comment in the sacctmgr flat file",
    "\\": "'\\' is an escape in the sacctmgr flat file",
    "=": "'=' separates an option from its value in sacctmgr",
    "|": "'|' separates the fields of sacct and sacctmgr output",
    "/": "'/' is not allowed",
    "@": "'@' is not allowed",
}


def account_key(name: str) -> str:
    """The form of an account name to compare, never to show: case-folded.

    An allocation and the usage of its account match when their keys are equal, whatever case
    the scheduler printed (Slurm: lower case; PBS: as typed).
    """
    return name.casefold()


def account_name_problem(name: object) -> str | None:
    """Why `name` cannot be a scheduler account, as a sentence without its full stop, or None
    when it can."""
    prefix = f"{name!r} is not a valid Slurm account name"
    if not isinstance(name, str):
        return f"{prefix}: it is not text"
    if not name:
        return "The Slurm account name is empty"
    if ACCOUNT_NAME_RE.match(name):
        if account_key(name) in RESERVED_ACCOUNTS:
            return f"{prefix}: it is reserved for the cluster's root"
        return None
    if len(name) > ACCOUNT_NAME_MAX_LENGTH:
        return f"{prefix}: it has {len(name)} characters, more than {ACCOUNT_NAME_MAX_LENGTH}"
    for character in name:
        if character.isspace():
            return f"{prefix}: it contains whitespace; use {ACCOUNT_NAME_RULE}"
        if not character.isprintable():
            return f"{prefix}: it contains a control character; use {ACCOUNT_NAME_RULE}"
        if character in _REFUSED:
            return f"{prefix}: {_REFUSED[character]}; use {ACCOUNT_NAME_RULE}"
    if name[0] in ".-":
        return f"{prefix}: it starts with {name[0]!r}; start with a letter, a digit or '_'"
    odd = next(c for c in name if not (c.isascii() and (c.isalnum() or c in "_.-")))
    return f"{prefix}: {odd!r} is not allowed; use {ACCOUNT_NAME_RULE}"


def user_name_problem(name: object) -> str | None:
    """Why `name` cannot be a cluster user, or None when it can."""
    if not isinstance(name, str) or not USER_NAME_RE.match(name):
        return f"{name!r} is not a valid cluster user name: use {USER_NAME_RULE}"
    return None
