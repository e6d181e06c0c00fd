from __future__ import annotations

import json
import time
from pathlib import Path

from django.conf import settings

from systems.models import Cluster
from usage.importer import _Counts, logger, usage_import
from usage.models import UsageImport

SPOOL_SETTLE_SECONDS = 60


_SPOOL_SKIP_SUFFIXES = (".part", ".tmp", ".partial")


def _spool_ready(path: Path, now: float, settle_seconds: float) -> bool:
    """A file still being written is never read: hidden and `.part`/`.tmp` files are in
    progress by convention, and any other file must have been left alone for a while."""
    name = path.name
    if name.startswith(".") or name.endswith(_SPOOL_SKIP_SUFFIXES) or not path.is_file():
        return False
    return now - path.stat().st_mtime >= settle_seconds


def _spool_move(path: Path, folder: Path) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    target = folder / path.name
    if target.exists():  # the same name dropped twice: keep both
        target = folder / f"{path.stem}-{int(time.time() * 1000)}{path.suffix}"
    path.replace(target)
    return target


def usage_spool_import(
    *, spool_dir: Path | None = None, settle_seconds: float = SPOOL_SETTLE_SECONDS
) -> list[UsageImport]:
    """Import every complete file in `<spool>/<cluster>/`, then move it to `done/` or `failed/`.

    - `<spool>/<cluster>/NAME`: sacct `--parsable2` output with its header line, times in the
      site's zone (`NAME.pbs`: a PBS/TORQUE accounting log).
    - Complete means: the name does not start with "." nor end with .part/.tmp, and the file
      has not changed for `settle_seconds`. Writers should write `.NAME.part` and rename it.
    - The file is first renamed into `processing/`, so two runs never read the same file;
      afterwards it goes to `done/` (read, even with rejected lines) or `failed/` (unreadable,
      or an error), with `NAME.report.json` beside it: the summary, counts and rejected lines.
    A directory that names no cluster is left alone (and logged).
    """
    root = Path(spool_dir or settings.USAGE_SPOOL_DIR)
    if not root.is_dir():
        return []
    clusters = {c.name: c for c in Cluster.objects.select_related("site")}
    runs: list[UsageImport] = []
    now = time.time()
    for folder in sorted(p for p in root.iterdir() if p.is_dir()):
        cluster = clusters.get(folder.name)
        if cluster is None:
            logger.warning("usage spool: %s names no cluster; its files stay put", folder)
            continue
        for path in sorted(folder.iterdir()):
            if not _spool_ready(path, now, settle_seconds):
                continue
            try:
                claimed = _spool_move(path, folder / "processing")
            except FileNotFoundError:
                continue  # another worker claimed it first
            runs.extend(_spool_file(cluster, claimed, folder))
    return runs


def _spool_file(cluster: Cluster, path: Path, folder: Path) -> list[UsageImport]:
    input_format = "pbs" if path.suffix == ".pbs" else "sacct"
    report: dict = {"file": path.name, "cluster": cluster.name, "format": input_format}
    run = None
    try:
        with path.open(encoding="utf-8", errors="replace", newline="") as handle:
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
        target = _spool_move(path, folder / "failed")
    else:
        report["status"] = "done"
        target = _spool_move(path, folder / "done")
    if run is not None:
        run.refresh_from_db()
        report.update(
            import_id=run.pk,
            summary=run.summary,
            rejected_lines=run.rejected_lines,
            **{name: getattr(run, name) for name in _Counts.__slots__},
        )
    report_path = target.with_name(target.name + ".report.json")
    report_path.write_text(json.dumps(report, indent=2, default=str) + "\n", encoding="utf-8")
    return [run] if run is not None else []
