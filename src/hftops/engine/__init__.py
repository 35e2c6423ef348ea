"""The trading engine: strategies, the gate chain, positions and PnL, checkpoint and reconciliation."""
