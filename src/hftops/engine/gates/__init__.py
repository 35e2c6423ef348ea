"""The gate chain every intent passes before it becomes an order."""

from hftops.engine.gates.chain import Gate, GateChain, GateCounters
from hftops.engine.gates.limits import (
    IntentShapeGate,
    LimitSpec,
    MaxNotionalGate,
    MaxOrderQtyGate,
    MaxPositionGate,
    OrderRateGate,
    PriceBandGate,
    build_gate_chain,
)

__all__ = [
    "Gate",
    "GateChain",
    "GateCounters",
    "IntentShapeGate",
    "LimitSpec",
    "MaxNotionalGate",
    "MaxOrderQtyGate",
    "MaxPositionGate",
    "OrderRateGate",
    "PriceBandGate",
    "build_gate_chain",
]
