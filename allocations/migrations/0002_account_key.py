from django.db import migrations, models

import allocations.models


def fill_account_keys(apps, schema_editor):
    from allocations.names import account_key

    Allocation = apps.get_model("allocations", "Allocation")
    for allocation in Allocation.objects.only("pk", "account").iterator():
        Allocation.objects.filter(pk=allocation.pk).update(
            account_key=account_key(allocation.account)
        )


class Migration(migrations.Migration):

    dependencies = [
        ("allocations", "0001_initial"),
    ]

    operations = [
        migrations.AddField(
            model_name="allocation",
            name="account_key",
            field=models.CharField(
                default="",
                editable=False,
                help_text="The account as compared with accounting: see allocations.names.account_key.",
                max_length=63,
            ),
            preserve_default=False,
        ),
        migrations.RunPython(fill_account_keys, migrations.RunPython.noop),
        migrations.AlterField(
            model_name="allocation",
            name="account",
            field=models.CharField(
                help_text="Unique per cluster, whatever the case (Slurm stores it in lower case).",
                max_length=63,
                validators=[allocations.models.AccountNameValidator()],
                verbose_name="Slurm account",
            ),
        ),
        migrations.RemoveConstraint(
            model_name="allocation",
            name="allocation_account_per_cluster",
        ),
        migrations.AddConstraint(
            model_name="allocation",
            constraint=models.UniqueConstraint(
                fields=("cluster", "account_key"), name="allocation_account_key_per_cluster"
            ),
        ),
    ]
