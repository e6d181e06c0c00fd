from __future__ import annotations

import errno
import json
import os
import stat
import time
from pathlib import Path

from django.conf import settings

from systems.models import Cluster
from usage.importer import logger, usage_import
from usage.importer.writers import _Counts
from usage.models import UsageImport

SPOOL_SETTLE_SECONDS = 60


_SPOOL_SKIP_SUFFIXES = (".part", ".tmp", ".partial")


_SPOOL_FOLDERS = ("processing", "done", "failed")


class SpoolRefused(OSError):
    """A spool entry that is not a plain file of the spool's own (a symbolic link)."""


def _spool_ready(path: Path, now: float, settle_seconds: float) -> bool:
    """A file still being written is never read: hidden and `.part`/`.tmp` files are in
    progress by convention, and any other file must have been left alone for a while."""
    name = path.name
    if name.startswith(".") or name.endswith(_SPOOL_SKIP_SUFFIXES):
        return False
    stat = path.lstat()  # of the entry itself: a symbolic link's age is its own
    return now - stat.st_mtime >= settle_seconds


def _spool_folder(folder: Path, name: str) -> Path:
    """`folder/name`, made if missing; refused when it is a symbolic link, which would send the
    spool's files (and their reports) wherever it points."""
    target = folder / name
    if target.is_symlink():
        raise SpoolRefused(f"{target} is a symbolic link; the spool writes only its own folders")
    target.mkdir(parents=True, exist_ok=True)
    return target


def _spool_move(path: Path, folder: Path) -> Path:
    target = folder / path.name
    if target.exists() or target.is_symlink():  # the same name dropped twice: keep both
        target = folder / f"{path.stem}-{int(time.time() * 1000)}{path.suffix}"
    path.replace(target)
    return target


def usage_spool_import(
    *, spool_dir: Path | None = None, settle_seconds: float = SPOOL_SETTLE_SECONDS
) -> list[UsageImport]:
    """Import every complete file in `<spool>/<cluster>/`, then move it to `done/` or `failed/`.

    - `<spool>/<cluster>/NAME`: sacct `--parsable2` output with its header line, times in the
      cluster's site zone unless they carry their own offset (`NAME.pbs`: a PBS/TORQUE
      accounting log).
    - Complete means: the name does not start with "." nor end with .part/.tmp, and the file
      has not changed for `settle_seconds`. Writers should write `.NAME.part` and rename it.
    - The file is first renamed into `processing/`, so two runs never read the same file;
      afterwards it goes to `done/` (read, even with rejected lines) or `failed/` (unreadable,
      or an error), with `NAME.report.json` beside it: the summary, counts and rejected lines.
    - A file left in `processing/` is one whose import was cut short (its worker killed): it
      is imported again, first. Importing never counts a run twice, so the file ends imported
      exactly once. This relies on one spool import at a time, which the periodic task's lock
      (`usage.tasks`) guarantees and which ends with the process holding it.
    - A symbolic link is never followed: it goes to `failed/` (the link, not what it points
      to) with a report saying so; a cluster folder that is a link is left alone.
    A directory that names no cluster is left alone (and logged).
    """
    root = Path(spool_dir or settings.USAGE_SPOOL_DIR)
    if not root.is_dir():
        return []
    clusters = {c.name: c for c in Cluster.objects.select_related("site")}
    runs: list[UsageImport] = []
    now = time.time()
    for folder in sorted(p for p in root.iterdir() if p.is_dir() and not p.name.startswith(".")):
        if folder.is_symlink():
            logger.warning("usage spool: %s is a symbolic link; it is not read", folder)
            continue
        cluster = clusters.get(folder.name)
        if cluster is None:
            logger.warning("usage spool: %s names no cluster; its files stay put", folder)
            continue
        try:
            processing = _spool_folder(folder, "processing")
        except SpoolRefused as exc:
            logger.error("usage spool: %s", exc)
            continue
        claimed = []
        for stranded in sorted(processing.iterdir()):
            if not stranded.name.startswith("."):
                logger.warning("usage spool: %s was cut short; importing it again", stranded)
                claimed.append(stranded)
        for path in sorted(folder.iterdir()):
            if path.name in _SPOOL_FOLDERS or not _spool_ready(path, now, settle_seconds):
                continue
            if path.is_dir() and not path.is_symlink():
                continue
            try:
                claimed.append(_spool_move(path, processing))
            except FileNotFoundError:
                continue  # another worker claimed it first
        for path in claimed:
            try:
                runs.extend(_spool_file(cluster, path, folder))
            except SpoolRefused as exc:  # failed/ itself is a link: the file waits for a fix
                logger.error("usage spool: %s stays in processing/: %s", path.name, exc)
    return runs


_NO_FOLLOW = getattr(os, "O_NOFOLLOW", 0)


def _open_plain_file(path: Path):
    """The file at `path` for reading as text, refusing a symbolic link even if one replaced
    the file after it was listed (O_NOFOLLOW), and anything but a plain file (a FIFO would
    block the worker for ever: O_NONBLOCK, then a look at what was opened)."""
    try:
        descriptor = os.open(path, os.O_RDONLY | _NO_FOLLOW | getattr(os, "O_NONBLOCK", 0))
    except OSError as exc:
        if exc.errno == errno.ELOOP:
            raise SpoolRefused(
                f"{path.name} is a symbolic link; the spool imports only files dropped in it"
            ) from None
        raise
    if not stat.S_ISREG(os.fstat(descriptor).st_mode):
        os.close(descriptor)
        raise SpoolRefused(f"{path.name} is not a plain file")
    return open(descriptor, encoding="utf-8", errors="replace", newline="")  # noqa: SIM115


def _write_report(path: Path, report: dict) -> None:
    if path.is_symlink():  # never write through a link someone left in done/ or failed/
        path.unlink()
    descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | _NO_FOLLOW, 0o644)
    with open(descriptor, "w", encoding="utf-8") as handle:
        handle.write(json.dumps(report, indent=2, default=str) + "\n")


def _spool_file(cluster: Cluster, path: Path, folder: Path) -> list[UsageImport]:
    input_format = "pbs" if path.suffix == ".pbs" else "sacct"
    report: dict = {"file": path.name, "cluster": cluster.name, "format": input_format}
    run = None
    try:
        if path.is_symlink():
            raise SpoolRefused(
                f"{path.name} is a symbolic link; the spool imports only files dropped in it"
            )
        with _open_plain_file(path) as handle:
            run = usage_import(
                cluster=cluster,
                lines=handle,
                input_format=input_format,
                source=UsageImport.Source.SPOOL,
                filename=path.name,
            )
    except Exception as exc:  # the file goes to failed/ with the reason; the next file goes on
        logger.exception("usage spool: %s failed", path)
        report["status"] = "failed"
        report["error"] = str(exc)
    else:
        report["status"] = "done"
    try:
        destination = _spool_folder(folder, report["status"])
    except SpoolRefused as exc:
        logger.error("usage spool: %s", exc)
        report["status"] = "failed"
        report["error"] = f"{report.get('error', '')} {exc}".strip()
        destination = _spool_folder(folder, "failed")
    target = _spool_move(path, destination)
    if run is not None:
        run.refresh_from_db()
        report.update(
            import_id=run.pk,
            summary=run.summary,
            rejected_lines=run.rejected_lines,
            **{name: getattr(run, name) for name in _Counts.__slots__},
        )
    _write_report(target.with_name(target.name + ".report.json"), report)
    return [run] if run is not None else []
