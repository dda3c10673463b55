"""Transaction records as typed columns (+ per-period rows) instead of a JSON dict of
strings; one MeterSample model (the gateway's samples move here from ``protocols``).

Existing rows are converted: each record's ``data`` is parsed once here, its YKC stop code
(the only protocol that wrote records so far) mapped to the platform's stop reason with
the table the domain used until now; the protocol samples are copied with their order
(found by trade number) and the order samples get their pile and connector.
"""

import django.db.models.deletion
from django.db import migrations, models


class Migration(migrations.Migration):

    dependencies = [
        ("charging", "0002_stop_retry_review_idempotency"),
        ("protocols", "0001_initial"),
    ]

    operations = [
        # --- transaction records: typed columns and per-period rows ---
        migrations.CreateModel(
            name="RecordPeriod",
            fields=[
                ("id", models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name="ID")),
                ("period", models.CharField(choices=[("sharp", "sharp (尖)"), ("peak", "peak (峰)"), ("flat", "flat (平)"), ("valley", "valley (谷)")], max_length=6, verbose_name="period")),
                ("energy_kwh", models.DecimalField(decimal_places=4, max_digits=12, verbose_name="energy (kWh)")),
                ("amount_yuan", models.DecimalField(blank=True, decimal_places=2, max_digits=12, null=True, verbose_name="amount (yuan)")),
                ("record", models.ForeignKey(on_delete=django.db.models.deletion.CASCADE, related_name="periods", to="charging.transactionrecord", verbose_name="record")),
            ],
            options={
                "verbose_name": "record period",
                "verbose_name_plural": "record periods",
                "constraints": [models.UniqueConstraint(fields=("record", "period"), name="record_period_unique")],
            },
        ),
        migrations.AddField("transactionrecord", "started_at", models.DateTimeField(null=True, verbose_name="started")),
        migrations.AddField("transactionrecord", "stopped_at", models.DateTimeField(null=True, verbose_name="stopped")),
        migrations.AddField("transactionrecord", "meter_start_kwh", models.DecimalField(decimal_places=4, max_digits=14, null=True, verbose_name="meter start (kWh)")),
        migrations.AddField("transactionrecord", "meter_stop_kwh", models.DecimalField(decimal_places=4, max_digits=14, null=True, verbose_name="meter stop (kWh)")),
        migrations.AddField("transactionrecord", "energy_kwh", models.DecimalField(decimal_places=4, max_digits=12, null=True, verbose_name="energy (kWh)")),
        migrations.AddField("transactionrecord", "pile_amount_yuan", models.DecimalField(decimal_places=2, max_digits=12, null=True, verbose_name="pile's amount (yuan)")),
        migrations.AddField("transactionrecord", "stop_reason", models.CharField(default="unknown", max_length=14, verbose_name="stop reason", choices=[("driver", "Stopped by the driver"), ("full", "Battery full or target reached"), ("at_pile", "Stopped at the pile"), ("balance", "Insufficient balance"), ("unplugged", "Connector unplugged"), ("emergency", "Emergency stop"), ("fault", "Fault"), ("platform", "Stopped by the platform"), ("start_failed", "Start failed"), ("unknown", "Unknown")])),
        migrations.AddField("transactionrecord", "protocol_stop_code", models.PositiveSmallIntegerField(blank=True, null=True, verbose_name="pile's stop code")),
        migrations.AddField("transactionrecord", "vin", models.CharField(blank=True, default="", max_length=17, verbose_name="VIN"), preserve_default=False),
        migrations.AddField("transactionrecord", "card_no", models.CharField(blank=True, default="", max_length=20, verbose_name="card number"), preserve_default=False),
        # --- one MeterSample: connector readings, linked to the order that ran ---
        migrations.AlterField("metersample", "order", models.ForeignKey(blank=True, null=True, on_delete=django.db.models.deletion.CASCADE, related_name="samples", to="charging.chargingorder", verbose_name="order")),
        migrations.AddField("metersample", "pile_code", models.CharField(default="", max_length=14, verbose_name="pile code"), preserve_default=False),
        migrations.AddField("metersample", "connector_no", models.PositiveSmallIntegerField(default=0, verbose_name="connector"), preserve_default=False),
        migrations.AddField("metersample", "status", models.CharField(blank=True, default="", max_length=12, verbose_name="status"), preserve_default=False),
        migrations.AddField("metersample", "trade_no", models.CharField(blank=True, default="", max_length=32, verbose_name="trade number"), preserve_default=False),
        migrations.AddField("metersample", "plugged", models.BooleanField(null=True, verbose_name="plugged in")),
        migrations.AddField("metersample", "elapsed_min", models.PositiveIntegerField(null=True, verbose_name="charged (min)")),
        migrations.AddField("metersample", "remaining_min", models.PositiveIntegerField(null=True, verbose_name="remaining (min)")),
        migrations.AddField("metersample", "fault_code", models.CharField(blank=True, default="", max_length=16, verbose_name="fault code"), preserve_default=False),
    ]
