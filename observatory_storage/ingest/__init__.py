"""Ingest: read landing files by record batch, conform them to the dataset contract, COPY
them into PostgreSQL and record each file in the ledger, exactly once."""
