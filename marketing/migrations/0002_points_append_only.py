"""PostgreSQL guard: points entries are append-only (a correction is a new entry)."""

from django.db import migrations

FORWARD = """
CREATE OR REPLACE FUNCTION marketing_points_entry_immutable() RETURNS trigger AS $$
BEGIN
    RAISE EXCEPTION 'points entries are append-only (post a correcting entry)';
END;
$$ LANGUAGE plpgsql;

CREATE TRIGGER marketing_points_entry_no_change
    BEFORE UPDATE OR DELETE ON marketing_pointsentry
    FOR EACH ROW EXECUTE FUNCTION marketing_points_entry_immutable();
"""

BACKWARD = """
DROP TRIGGER IF EXISTS marketing_points_entry_no_change ON marketing_pointsentry;
"""


class Migration(migrations.Migration):
    dependencies = [("marketing", "0001_initial")]

    operations = [migrations.RunSQL(FORWARD, BACKWARD)]
