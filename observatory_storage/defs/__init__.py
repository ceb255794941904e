"""Dagster definitions, one module per concern; ``observatory_storage.definitions`` joins them."""
