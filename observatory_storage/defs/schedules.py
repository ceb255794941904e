"""Dagster schedules definitions."""

JOBS: list = []
SENSORS: list = []
SCHEDULES: list = []
