"""PileBillingModel, moved from billing: its table ``billing_pilebillingmodel`` (and its rows)
stays; only Django's state and the content type change hands."""

import django.db.models.deletion
from django.db import migrations, models


def content_type_to_ykc(apps, schema_editor):
    ContentType = apps.get_model('contenttypes', 'ContentType')
    if not ContentType.objects.filter(app_label='ykc', model='pilebillingmodel').exists():
        ContentType.objects.filter(app_label='billing', model='pilebillingmodel').update(
            app_label='ykc'
        )


def content_type_to_billing(apps, schema_editor):
    ContentType = apps.get_model('contenttypes', 'ContentType')
    if not ContentType.objects.filter(app_label='billing', model='pilebillingmodel').exists():
        ContentType.objects.filter(app_label='ykc', model='pilebillingmodel').update(
            app_label='billing'
        )


class Migration(migrations.Migration):

    initial = True

    dependencies = [
        ('billing', '0003_pilebillingmodel_to_ykc'),
        ('contenttypes', '0002_remove_content_type_name'),
        ('stations', '0001_initial'),
    ]

    operations = [
        migrations.SeparateDatabaseAndState(
            state_operations=[
                migrations.CreateModel(
                    name='PileBillingModel',
                    fields=[
                        ('id', models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name='ID')),
                        ('model_number_due', models.PositiveSmallIntegerField(blank=True, null=True, verbose_name='model due')),
                        ('slots_due', models.CharField(blank=True, max_length=48, verbose_name='slot map due')),
                        ('due_since', models.DateTimeField(blank=True, null=True, verbose_name='due since')),
                        ('model_number_sent', models.PositiveSmallIntegerField(blank=True, null=True, verbose_name='model sent')),
                        ('slots_sent', models.CharField(blank=True, max_length=48, verbose_name='slot map sent')),
                        ('sent_at', models.DateTimeField(blank=True, null=True, verbose_name='sent')),
                        ('model_number_acked', models.PositiveSmallIntegerField(blank=True, null=True, verbose_name='model on the pile')),
                        ('slots_acked', models.CharField(blank=True, max_length=48, verbose_name='slot map on the pile')),
                        ('acked_at', models.DateTimeField(blank=True, null=True, verbose_name='acknowledged')),
                        ('last_result', models.CharField(blank=True, choices=[('sent', 'Sent, awaiting reply'), ('ok', 'Accepted by the pile'), ('failed', 'Refused by the pile'), ('same', 'Pile verified: up to date'), ('differs', 'Pile verified: out of date')], max_length=8, verbose_name='last result')),
                        ('pile', models.OneToOneField(on_delete=django.db.models.deletion.CASCADE, related_name='billing_model', to='stations.pile', verbose_name='pile')),
                    ],
                    options={
                        'verbose_name': 'pile billing model',
                        'verbose_name_plural': 'pile billing models',
                        'db_table': 'billing_pilebillingmodel',
                        'ordering': ['pile'],
                    },
                ),
            ],
            database_operations=[],
        ),
        migrations.RunPython(content_type_to_ykc, content_type_to_billing),
    ]
