"""Cross-operator daily rollups in the public schema, for the super admin."""
