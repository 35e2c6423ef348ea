"""hftops: zero-loss market-data capture, gated trading and one control surface for a Python HFT stack."""

__version__ = "0.1.0"
