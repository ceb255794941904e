"""Database upkeep: migrations, VACUUM/ANALYZE, retention, partitions, compression, rollups."""
