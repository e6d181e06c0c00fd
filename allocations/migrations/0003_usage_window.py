from django.db import migrations, models


def fill_windows(apps, schema_editor):
    from allocations.models import usage_window

    Allocation = apps.get_model("allocations", "Allocation")
    allocations = Allocation.objects.select_related("cluster__site", "access_mode__call")
    for allocation in allocations.iterator():
        grace = allocation.access_mode.call.usage_grace_days if allocation.access_mode_id else 0
        usage_from, usage_until = usage_window(
            start=allocation.start,
            end=allocation.end,
            time_zone=allocation.cluster.site.time_zone,
            grace_days=grace,
        )
        Allocation.objects.filter(pk=allocation.pk).update(
            usage_from=usage_from, usage_until=usage_until
        )


class Migration(migrations.Migration):

    dependencies = [
        ("allocations", "0002_account_key"),
        ("systems", "0002_gpu_slices_and_usage_grace"),
    ]

    operations = [
        migrations.AddField(
            model_name="allocation",
            name="usage_from",
            field=models.DateTimeField(
                blank=True, editable=False, help_text="Jobs that start from then count.", null=True
            ),
        ),
        migrations.AddField(
            model_name="allocation",
            name="usage_until",
            field=models.DateTimeField(
                blank=True,
                editable=False,
                help_text="Jobs that start from then on do not count: the end plus the call's grace.",
                null=True,
            ),
        ),
        migrations.RunPython(fill_windows, migrations.RunPython.noop),
    ]
