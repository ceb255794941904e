"""The health and metrics service (`observatory-storage serve`).

``/health`` on HEALTH_PORT and Prometheus ``/metrics`` on METRICS_PORT. Every number is
read from durable tables at request time (see ``facts``), so the service adds up what all
short-lived Dagster run processes did, survives its own restarts and keeps no state that
grows with the number of runs. Design notes and measurements: ``docs/service.md``.
"""
