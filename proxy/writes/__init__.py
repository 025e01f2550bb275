"""Synced writes: planning a statement, calling the vendor API first, applying locally."""
