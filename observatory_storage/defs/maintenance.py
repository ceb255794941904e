"""Dagster maintenance definitions."""

JOBS: list = []
SENSORS: list = []
SCHEDULES: list = []
