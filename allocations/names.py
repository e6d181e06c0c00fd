"""What the scheduler accepts as an account or user name: the one rule every entry point checks.

Names travel into `sacctmgr` commands and flat files, so they are checked where they enter
(forms, the admin, the API, `import_allocations`) and again where they leave (the exports).
"""

import re

ACCOUNT_NAME_RE = re.compile(r"\A[a-z][a-z0-9_]{0,62}\Z")
USER_NAME_RE = re.compile(r"\A[a-z_][a-z0-9_.-]{0,31}\Z")
RESERVED_ACCOUNTS = frozenset({"root"})

ACCOUNT_NAME_RULE = "1-63 characters a-z, 0-9 and '_', starting with a letter"
USER_NAME_RULE = "1-32 characters a-z, 0-9, '_', '.' and '-', starting with a letter or '_'"


def account_name_problem(name: object) -> str | None:
    """Why `name` cannot be a scheduler account, or None when it can."""
    if not isinstance(name, str) or not ACCOUNT_NAME_RE.match(name):
        return f"{name!r} is not a valid Slurm account name: use {ACCOUNT_NAME_RULE}"
    if name in RESERVED_ACCOUNTS:
        return f"{name!r} is not a valid Slurm account name: it is reserved for the cluster's root"
    return None


def user_name_problem(name: object) -> str | None:
    """Why `name` cannot be a cluster user, or None when it can."""
    if not isinstance(name, str) or not USER_NAME_RE.match(name):
        return f"{name!r} is not a valid cluster user name: use {USER_NAME_RULE}"
    return None
