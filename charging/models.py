"""charging models (tenant schema)."""
