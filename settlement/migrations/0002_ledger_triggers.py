"""PostgreSQL guards: entries are append-only; a posting's entries sum to zero at commit."""

from django.db import migrations

FORWARD = """
CREATE OR REPLACE FUNCTION settlement_entry_immutable() RETURNS trigger AS $$
BEGIN
    RAISE EXCEPTION 'ledger entries are append-only (use a reversing posting)';
END;
$$ LANGUAGE plpgsql;

CREATE TRIGGER settlement_entry_no_change
    BEFORE UPDATE OR DELETE ON settlement_entry
    FOR EACH ROW EXECUTE FUNCTION settlement_entry_immutable();

CREATE OR REPLACE FUNCTION settlement_posting_balanced() RETURNS trigger AS $$
DECLARE
    total numeric;
BEGIN
    -- schema-qualified from the trigger itself: search_path may be another schema at commit
    EXECUTE format(
        'SELECT COALESCE(SUM(amount), 0) FROM %I.settlement_entry WHERE posting_id = $1',
        TG_TABLE_SCHEMA
    ) INTO total USING NEW.posting_id;
    IF total <> 0 THEN
        RAISE EXCEPTION 'posting % does not balance (sum %)', NEW.posting_id, total;
    END IF;
    RETURN NULL;
END;
$$ LANGUAGE plpgsql;

CREATE CONSTRAINT TRIGGER settlement_entry_balanced
    AFTER INSERT ON settlement_entry
    DEFERRABLE INITIALLY DEFERRED
    FOR EACH ROW EXECUTE FUNCTION settlement_posting_balanced();
"""

BACKWARD = """
DROP TRIGGER IF EXISTS settlement_entry_balanced ON settlement_entry;
DROP TRIGGER IF EXISTS settlement_entry_no_change ON settlement_entry;
DROP FUNCTION IF EXISTS settlement_posting_balanced();
DROP FUNCTION IF EXISTS settlement_entry_immutable();
"""


class Migration(migrations.Migration):
    dependencies = [("settlement", "0001_initial")]

    operations = [migrations.RunSQL(FORWARD, BACKWARD)]
