"""billing models (tenant schema)."""
