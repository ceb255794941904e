"""OpenTelemetry (OTLP) files: what Collectors' fileexporter/awss3exporter and SDKs write.

One module per job, in the order the data flows (docs/otlp.md describes formats and mapping):

- ``framing``: decompression (gzip, zstd: detected by magic bytes) and the split of a file
  into messages: one protobuf message, 4-byte big-endian length-prefixed messages (each
  possibly zstd-compressed on its own, the fileexporter's framing), one JSON document or
  JSON Lines.
- ``sniff``: a message's signal (traces, metrics, logs), told from its content in one
  place, and its decoded form: protobuf classes from ``opentelemetry-proto``, JSON parsed
  by orjson (never protobuf's json_format, which would read OTLP/JSON's hex ids as base64).
- ``signals``: the per-signal table: containers and flat record fields, where each sits in
  protobuf and in OTLP/JSON and which column it fills (the seam a compiled decoder reads).
- ``mapping``: the attribute -> column table, built from the contracts' ``Column.otel``
  names (``datasets.py``), and the row builder that turns rows into Arrow batches.
- ``proto_access`` / ``json_access``: the same accessors over protobuf messages and
  OTLP/JSON dicts; ``walk``: one walker per signal, over either accessor.
- ``reader``: the :class:`~observatory_storage.ingest.readers.SourceReader` the loader uses.
"""
