#!/usr/bin/env python
import os
import sys
from pathlib import Path

CHECKOUT = Path(__file__).resolve().parent


def _checkout_python() -> None:
    """In a checkout, `python manage.py` runs in the `.venv` that `make install` made."""
    venv = CHECKOUT / ".venv"
    python = venv / "bin" / "python"
    if python.exists() and Path(sys.prefix).resolve() != venv.resolve():
        os.execv(python, [str(python), *sys.argv])  # noqa: S606 - the same command, in .venv


def main() -> None:
    _checkout_python()
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")
    os.environ.setdefault("HPCGATE_FROM_CHECKOUT", "1")
    from django.core.management import execute_from_command_line
    from django.db import InterfaceError, OperationalError

    try:
        execute_from_command_line(sys.argv)
    except (OperationalError, InterfaceError) as exc:
        reason = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        sys.stderr.write(f"The database does not answer or is not ready ({reason}).\n")
        sys.exit(1)


if __name__ == "__main__":
    main()
