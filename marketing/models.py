"""marketing models (tenant schema)."""
