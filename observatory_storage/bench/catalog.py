"""Every benchmark method by name: the Parquet path and its peers (``methods.py``) and the
same spans as OTLP files through the ingest path (``otlp.py``)."""

from __future__ import annotations

from observatory_storage.bench import methods, otlp

METHODS = {**methods.METHODS, **otlp.METHODS}
DESCRIPTIONS = {**methods.DESCRIPTIONS, **otlp.DESCRIPTIONS}
