from core.tasks import periodic_task


@periodic_task("usage_spool_import")
def usage_spool_import() -> str:
    """Every 5 minutes: import complete accounting files dropped in USAGE_SPOOL_DIR/<cluster>/."""
    from usage.spool import usage_spool_import as import_spool

    return f"files={len(import_spool())}"
