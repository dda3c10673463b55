"""PileBillingModel moves to the YKC protocol app (``ykc``): state only, the table stays."""

from django.db import migrations


class Migration(migrations.Migration):

    dependencies = [
        ('billing', '0002_payments'),
    ]

    operations = [
        migrations.SeparateDatabaseAndState(
            state_operations=[migrations.DeleteModel(name='PileBillingModel')],
            database_operations=[],
        ),
    ]
