"""Database access: connections and pools, the embedded server, backend detection."""
