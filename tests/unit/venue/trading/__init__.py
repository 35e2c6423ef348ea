"""Trading side of the simulated venue: matching, margin, signing, journal."""
