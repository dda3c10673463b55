"""PostgreSQL guards: a confirmed statement's figures and lines never change; payable
lines are never deleted and their amounts never change."""

from django.db import migrations

FORWARD = """
CREATE OR REPLACE FUNCTION settlement_statement_frozen() RETURNS trigger AS $$
BEGIN
    IF TG_OP = 'DELETE' THEN
        IF OLD.status <> 'draft' THEN
            RAISE EXCEPTION 'statement % is confirmed: it cannot be deleted', OLD.number;
        END IF;
        RETURN OLD;
    END IF;
    IF OLD.status <> 'draft' AND (
        NEW.number, NEW.owner_id, NEW.period_start, NEW.period_end, NEW.orders, NEW.energy_kwh,
        NEW.gross, NEW.discounts, NEW.refunds, NEW.payment_fees, NEW.commission, NEW.share,
        NEW.adjustments, NEW.net
    ) IS DISTINCT FROM (
        OLD.number, OLD.owner_id, OLD.period_start, OLD.period_end, OLD.orders, OLD.energy_kwh,
        OLD.gross, OLD.discounts, OLD.refunds, OLD.payment_fees, OLD.commission, OLD.share,
        OLD.adjustments, OLD.net
    ) THEN
        RAISE EXCEPTION 'statement % is confirmed: corrections go into the next one', OLD.number;
    END IF;
    RETURN NEW;
END;
$$ LANGUAGE plpgsql;

CREATE TRIGGER settlement_statement_frozen
    BEFORE UPDATE OR DELETE ON settlement_statement
    FOR EACH ROW EXECUTE FUNCTION settlement_statement_frozen();

CREATE OR REPLACE FUNCTION settlement_splitline_frozen() RETURNS trigger AS $$
BEGIN
    IF TG_OP = 'DELETE' THEN
        RAISE EXCEPTION 'payable lines are never deleted';
    END IF;
    IF (NEW.owner_id, NEW.kind, NEW.amount, NEW.split_id, NEW.posting_id)
        IS DISTINCT FROM (OLD.owner_id, OLD.kind, OLD.amount, OLD.split_id, OLD.posting_id)
       OR (OLD.statement_id IS NOT NULL AND NEW.statement_id IS DISTINCT FROM OLD.statement_id)
    THEN
        RAISE EXCEPTION 'payable line % is fixed once written or on a statement', OLD.id;
    END IF;
    RETURN NEW;
END;
$$ LANGUAGE plpgsql;

CREATE TRIGGER settlement_splitline_frozen
    BEFORE UPDATE OR DELETE ON settlement_splitline
    FOR EACH ROW EXECUTE FUNCTION settlement_splitline_frozen();
"""

BACKWARD = """
DROP TRIGGER IF EXISTS settlement_splitline_frozen ON settlement_splitline;
DROP TRIGGER IF EXISTS settlement_statement_frozen ON settlement_statement;
DROP FUNCTION IF EXISTS settlement_splitline_frozen();
DROP FUNCTION IF EXISTS settlement_statement_frozen();
"""


class Migration(migrations.Migration):
    dependencies = [("settlement", "0003_revenue_split")]

    operations = [migrations.RunSQL(FORWARD, BACKWARD)]
