"""settlement models (tenant schema)."""
