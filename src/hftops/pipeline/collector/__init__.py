"""pipeline/collector."""
