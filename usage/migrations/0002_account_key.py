from django.db import migrations, models
from django.db.models.functions import Lower


def fill_account_keys(apps, schema_editor):
    # lower() is casefold() for the ASCII names an allocation can have
    UsageRecord = apps.get_model("usage", "UsageRecord")
    UsageRecord.objects.update(account_key=Lower("account"))


class Migration(migrations.Migration):

    dependencies = [
        ("usage", "0001_initial"),
        ("allocations", "0002_account_key"),
    ]

    operations = [
        migrations.AddField(
            model_name="usagerecord",
            name="account_key",
            field=models.CharField(
                default="",
                help_text="The account as compared with allocations: allocations.names.account_key.",
                max_length=63,
            ),
            preserve_default=False,
        ),
        migrations.RunPython(fill_account_keys, migrations.RunPython.noop),
        migrations.AlterField(
            model_name="usagerecord",
            name="account",
            field=models.CharField(help_text="As the scheduler printed it.", max_length=63),
        ),
        migrations.RemoveIndex(
            model_name="usagerecord",
            name="usage_record_unmatched",
        ),
        migrations.AddIndex(
            model_name="usagerecord",
            index=models.Index(
                condition=models.Q(("allocation__isnull", True)),
                fields=["cluster", "account_key"],
                name="usage_record_unattributed",
            ),
        ),
    ]
