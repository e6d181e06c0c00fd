from core.tasks import periodic_task


@periodic_task("allocation_dates_apply")
def allocation_dates_apply() -> str:
    """Daily: activate allocations whose start date has come, expire those past their end."""
    from allocations.services import allocation_dates_apply as apply

    counts = apply()
    return f"activated={counts['activated']} expired={counts['expired']}"
