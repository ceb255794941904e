"""`observatory-storage bench`: our ingest path against the client ceiling and the peers.

Every method loads the same generated spans into its own fresh database migrated with the
shipped schema and indexes, so the only thing that differs between rows of the report is
the loader. See ``docs/benchmarks.md`` for results and how to reproduce them.
"""
