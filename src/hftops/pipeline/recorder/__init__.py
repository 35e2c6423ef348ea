"""pipeline/recorder."""
