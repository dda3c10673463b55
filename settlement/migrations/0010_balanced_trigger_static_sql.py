"""The balance trigger with static SQL: its plan is kept for the session (the dynamic
``EXECUTE format(...)`` of 0002 was planned again for every entry at every commit).

The function exists once per operator schema; this migration runs in each (and in the
template) and writes that schema's name into the body, so the query never depends on the
``search_path`` at commit. Schemas cloned from the template (django-tenants' clone_schema
rewrites ``<template>.`` to ``<new schema>.`` in function bodies) get their own name; a body
whose schema does not match the trigger's table falls back to the dynamic query, so the
check is never made against another schema's entries.
"""

from django.db import migrations

FORWARD = r"""
DO $do$
DECLARE
    qualified text := quote_ident(current_schema()) || '.';
BEGIN
    EXECUTE format($f$
CREATE OR REPLACE FUNCTION settlement_posting_balanced() RETURNS trigger AS $body$
DECLARE
    total numeric;
BEGIN
    IF quote_ident(TG_TABLE_SCHEMA) || '.' = %1$L THEN
        SELECT COALESCE(SUM(amount), 0) INTO total
        FROM %2$ssettlement_entry WHERE posting_id = NEW.posting_id;
    ELSE
        EXECUTE format(
            'SELECT COALESCE(SUM(amount), 0) FROM %%I.settlement_entry WHERE posting_id = $1',
            TG_TABLE_SCHEMA
        ) INTO total USING NEW.posting_id;
    END IF;
    IF total <> 0 THEN
        RAISE EXCEPTION 'posting %% does not balance (sum %%)', NEW.posting_id, total;
    END IF;
    RETURN NULL;
END;
$body$ LANGUAGE plpgsql
$f$, qualified, qualified);
END
$do$;
"""

BACKWARD = """
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
"""


class Migration(migrations.Migration):
    dependencies = [("settlement", "0009_roaming_order_posting")]

    operations = [migrations.RunSQL(FORWARD, BACKWARD)]
