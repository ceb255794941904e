"""Dagster sensors definitions."""

JOBS: list = []
SENSORS: list = []
SCHEDULES: list = []
