"""The error raised while decoding or mapping one OTLP message (turned into a ReadError)."""

from __future__ import annotations


class OtlpError(Exception):
    """``where`` locates the message (line or message number) and record, ``field`` names
    the OTLP field, ``reason`` says what is wrong."""

    def __init__(self, reason: str, field: str | None = None, where: str | None = None,
                 row: int | None = None):
        self.reason = reason
        self.field = field
        self.where = where
        self.row = row  # 0-based row of the dataset's rows in the file, when known
        super().__init__(reason)
