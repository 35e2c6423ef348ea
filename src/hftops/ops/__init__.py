"""The safety layer: sessions, autonomy modes and monitor, manual rearm, flattening, margin, evidence."""
