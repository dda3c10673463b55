"""The gateway's meter samples live in ``charging.MeterSample`` now (copied there by
charging 0004), one model instead of two."""

from django.db import migrations


class Migration(migrations.Migration):

    dependencies = [
        ("protocols", "0001_initial"),
        ("charging", "0004_convert_records_and_samples"),
    ]

    operations = [
        migrations.DeleteModel(name="MeterSample"),
    ]
