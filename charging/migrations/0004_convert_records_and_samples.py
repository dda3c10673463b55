"""Transaction records as typed columns (+ per-period rows) instead of a JSON dict of
strings; one MeterSample model (the gateway's samples move here from ``protocols``).

Existing rows are converted: each record's ``data`` is parsed once here, its YKC stop code
(the only protocol that wrote records so far) mapped to the platform's stop reason with
the table the domain used until now; the protocol samples are copied with their order
(found by trade number) and the order samples get their pile and connector.
"""

from datetime import datetime
from decimal import Decimal

from django.db import migrations

# charging.services.YKC_STOP_REASONS as it was when records were written (YKC 0x3B 停止原因).
_YKC_STOP_REASONS = {
    0x40: "driver", 0x41: "full", 0x42: "full", 0x43: "full", 0x44: "full", 0x45: "at_pile",
    0x4E: "balance", 0x6E: "balance", 0x4B: "unplugged", 0x6B: "unplugged",
    0x50: "emergency", 0x72: "emergency",
}
_KWH = Decimal("0.0001")
_YUAN = Decimal("0.01")


def _stop_reason(code):
    if code is None:
        return "unknown"
    if code in _YKC_STOP_REASONS:
        return _YKC_STOP_REASONS[code]
    return "fault" if 0x4A <= code <= 0x8F else "unknown"


def records_forward(apps, schema_editor):
    Record = apps.get_model("charging", "TransactionRecord")
    Period = apps.get_model("charging", "RecordPeriod")
    for record in Record.objects.all().iterator():
        data = record.data or {}
        code = data.get("stop_reason_code")
        record.started_at = datetime.fromisoformat(data["started_at"])
        record.stopped_at = datetime.fromisoformat(data["stopped_at"])
        record.meter_start_kwh = Decimal(data["meter_start_kwh"]).quantize(_KWH)
        record.meter_stop_kwh = Decimal(data["meter_stop_kwh"]).quantize(_KWH)
        record.energy_kwh = Decimal(data["energy_kwh"]).quantize(_KWH)
        record.pile_amount_yuan = Decimal(data["pile_amount_yuan"]).quantize(_YUAN)
        record.protocol_stop_code = code
        record.stop_reason = _stop_reason(code)
        record.vin = data.get("vin", "")[:17]
        record.card_no = data.get("card_no", "")[:20]
        record.save()
        Period.objects.bulk_create([
            Period(record=record, period=name, energy_kwh=Decimal(kwh).quantize(_KWH))
            for name, kwh in data.get("energy_by_period", {}).items()
        ])


def records_backward(apps, schema_editor):
    Record = apps.get_model("charging", "TransactionRecord")
    for record in Record.objects.all().iterator():
        record.data = {
            "pile_code": record.pile_code,
            "connector_no": record.connector_no,
            "trade_no": record.trade_no,
            "started_at": record.started_at.isoformat(),
            "stopped_at": record.stopped_at.isoformat(),
            "meter_start_kwh": str(record.meter_start_kwh),
            "meter_stop_kwh": str(record.meter_stop_kwh),
            "energy_kwh": str(record.energy_kwh),
            "pile_amount_yuan": str(record.pile_amount_yuan),
            "stop_reason_code": record.protocol_stop_code,
            "energy_by_period": {p.period: str(p.energy_kwh) for p in record.periods.all()},
            "vin": record.vin,
            "card_no": record.card_no,
        }
        record.save(update_fields=["data"])


def samples_forward(apps, schema_editor):
    Sample = apps.get_model("charging", "MeterSample")
    Order = apps.get_model("charging", "ChargingOrder")
    Old = apps.get_model("protocols", "MeterSample")
    for sample in Sample.objects.select_related("order__pile", "order__connector").iterator():
        sample.pile_code = sample.order.pile.code
        sample.connector_no = sample.order.connector.number
        sample.trade_no = sample.order.trade_no
        sample.save(update_fields=["pile_code", "connector_no", "trade_no"])
    orders = dict(Order.objects.values_list("trade_no", "pk"))
    batch = []
    for old in Old.objects.order_by("id").iterator():
        batch.append(Sample(
            order_id=orders.get(old.trade_no) if old.trade_no else None,
            pile_code=old.pile_code, connector_no=old.connector_no, at=old.at,
            status=old.status, trade_no=old.trade_no, plugged=old.plugged,
            energy_kwh=old.energy_kwh, amount_yuan=old.amount_yuan, power_kw=old.power_kw,
            voltage_v=old.voltage_v, current_a=old.current_a, soc_percent=old.soc_percent,
            elapsed_min=old.elapsed_min, remaining_min=old.remaining_min,
            fault_code=f"0x{old.fault_bits:04X}" if old.fault_bits else "",
        ))
        if len(batch) >= 5000:
            Sample.objects.bulk_create(batch)
            batch = []
    Sample.objects.bulk_create(batch)


def samples_backward(apps, schema_editor):
    Sample = apps.get_model("charging", "MeterSample")
    Old = apps.get_model("protocols", "MeterSample")
    Old.objects.bulk_create([
        Old(pile_code=s.pile_code, connector_no=s.connector_no, at=s.at, status=s.status,
            trade_no=s.trade_no, plugged=bool(s.plugged), voltage_v=s.voltage_v or 0,
            current_a=s.current_a or 0, power_kw=s.power_kw or 0, energy_kwh=s.energy_kwh,
            amount_yuan=s.amount_yuan or 0, soc_percent=s.soc_percent or 0,
            elapsed_min=s.elapsed_min or 0, remaining_min=s.remaining_min or 0,
            fault_bits=int(s.fault_code, 16) if s.fault_code else 0)
        for s in Sample.objects.filter(order__isnull=True).iterator()
    ])
    Sample.objects.filter(order__isnull=True).delete()


class Migration(migrations.Migration):

    dependencies = [
        ("charging", "0003_typed_records_one_meter_sample"),
    ]

    operations = [
        migrations.RunPython(records_forward, records_backward),
        migrations.RunPython(samples_forward, samples_backward),
    ]
