"""Peer workloads: scripts run by each peer's own virtual environment (no Tiercel imports)."""
