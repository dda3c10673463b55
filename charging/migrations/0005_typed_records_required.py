"""Transaction records as typed columns (+ per-period rows) instead of a JSON dict of
strings; one MeterSample model (the gateway's samples move here from ``protocols``).

Existing rows are converted: each record's ``data`` is parsed once here, its YKC stop code
(the only protocol that wrote records so far) mapped to the platform's stop reason with
the table the domain used until now; the protocol samples are copied with their order
(found by trade number) and the order samples get their pile and connector.
"""

from django.db import migrations, models


class Migration(migrations.Migration):

    dependencies = [
        ("charging", "0004_convert_records_and_samples"),
    ]

    operations = [
        migrations.AlterField("transactionrecord", "data", models.JSONField(null=True, verbose_name="decoded")),
        migrations.RemoveField("transactionrecord", "data"),
        migrations.AlterField("transactionrecord", "started_at", models.DateTimeField(verbose_name="started")),
        migrations.AlterField("transactionrecord", "stopped_at", models.DateTimeField(verbose_name="stopped")),
        migrations.AlterField("transactionrecord", "meter_start_kwh", models.DecimalField(decimal_places=4, max_digits=14, verbose_name="meter start (kWh)")),
        migrations.AlterField("transactionrecord", "meter_stop_kwh", models.DecimalField(decimal_places=4, max_digits=14, verbose_name="meter stop (kWh)")),
        migrations.AlterField("transactionrecord", "energy_kwh", models.DecimalField(decimal_places=4, max_digits=12, verbose_name="energy (kWh)")),
        migrations.AlterField("transactionrecord", "pile_amount_yuan", models.DecimalField(decimal_places=2, max_digits=12, verbose_name="pile's amount (yuan)")),
        migrations.AlterField("transactionrecord", "stop_reason", models.CharField(max_length=14, verbose_name="stop reason", choices=[("driver", "Stopped by the driver"), ("full", "Battery full or target reached"), ("at_pile", "Stopped at the pile"), ("balance", "Insufficient balance"), ("unplugged", "Connector unplugged"), ("emergency", "Emergency stop"), ("fault", "Fault"), ("platform", "Stopped by the platform"), ("start_failed", "Start failed"), ("unknown", "Unknown")])),
        migrations.AddIndex("metersample", models.Index(fields=["pile_code", "connector_no", "-at"], name="msample_conn_at")),
        migrations.AddIndex("metersample", models.Index(fields=["trade_no"], name="msample_trade")),
        migrations.AddIndex("metersample", models.Index(fields=["at"], name="msample_at")),
    ]
