from rest_framework import serializers

from ..models import Invoice, InvoiceLine, InvoiceTitle, TitleKind


class TitleIn(serializers.Serializer):
    kind = serializers.ChoiceField(choices=TitleKind.choices)
    name = serializers.CharField(max_length=100)
    tax_number = serializers.CharField(max_length=20, required=False, allow_blank=True, default="")
    email = serializers.EmailField(required=False, allow_blank=True, default="")
    phone = serializers.CharField(max_length=20, required=False, allow_blank=True, default="")
    address = serializers.CharField(max_length=100, required=False, allow_blank=True, default="")
    bank_account = serializers.CharField(max_length=100, required=False, allow_blank=True, default="")
    is_default = serializers.BooleanField(required=False, default=False)


class TitleOut(serializers.ModelSerializer):
    class Meta:
        model = InvoiceTitle
        fields = ["id", "kind", "name", "tax_number", "email", "phone", "address", "bank_account",
                  "is_default", "created_at"]


class InvoiceableOrderOut(serializers.Serializer):
    number = serializers.CharField()
    settled_at = serializers.DateTimeField()
    station_name = serializers.CharField()
    energy_kwh = serializers.DecimalField(max_digits=12, decimal_places=4)
    electricity = serializers.DecimalField(max_digits=10, decimal_places=2)
    service = serializers.DecimalField(max_digits=10, decimal_places=2)
    discount = serializers.DecimalField(max_digits=10, decimal_places=2)
    refunded = serializers.DecimalField(max_digits=10, decimal_places=2)
    net = serializers.DecimalField(max_digits=10, decimal_places=2, help_text="Invoiceable (yuan).")


class InvoiceRequestIn(serializers.Serializer):
    order_numbers = serializers.ListField(child=serializers.CharField(max_length=32), allow_empty=False)
    title_kind = serializers.ChoiceField(choices=TitleKind.choices)
    title_name = serializers.CharField(max_length=100)
    tax_number = serializers.CharField(max_length=20, required=False, allow_blank=True, default="")
    email = serializers.EmailField()
    phone = serializers.CharField(max_length=20, required=False, allow_blank=True, default="")
    address = serializers.CharField(max_length=100, required=False, allow_blank=True, default="")
    bank_account = serializers.CharField(max_length=100, required=False, allow_blank=True, default="")
    remark = serializers.CharField(max_length=200, required=False, allow_blank=True, default="")
    save_title = serializers.BooleanField(required=False, default=False)


class LineOut(serializers.ModelSerializer):
    class Meta:
        model = InvoiceLine
        fields = ["kind", "goods_name", "goods_code", "tax_rate", "amount", "amount_ex_tax", "tax"]


class InvoiceOut(serializers.ModelSerializer):
    lines = LineOut(many=True, read_only=True)
    order_numbers = serializers.SerializerMethodField()
    status_display = serializers.CharField(source="get_status_display", read_only=True)
    pdf_available = serializers.SerializerMethodField()

    class Meta:
        model = Invoice
        fields = [
            "id", "number", "kind", "status", "status_display", "title_kind", "title_name",
            "tax_number", "email", "remark", "total", "amount_ex_tax", "tax", "lines",
            "order_numbers", "invoice_code", "invoice_no", "issued_at", "created_at",
            "original", "replaces", "pdf_available", "last_error",
        ]

    def get_order_numbers(self, invoice: Invoice) -> list[str]:
        return [o.order_number for o in invoice.orders.all()]

    def get_pdf_available(self, invoice: Invoice) -> bool:
        return invoice.status in (Invoice.Status.ISSUED, Invoice.Status.REVERSED)
