"""Dagster ingest definitions."""

JOBS: list = []
SENSORS: list = []
SCHEDULES: list = []
