"""Map a conformed text column's spellings to its vocabulary's values (``vocabulary.py``).

Vectorized: the column is dictionary-encoded on its bytes, each distinct value is mapped
once (a batch has a handful: ``openai``, ``Anthropic``), and the codes are decoded again;
a column already in canonical spelling is returned as it is. Works on the raw bytes, so a
value that is not valid UTF-8 (or holds a NUL) is never decoded here: it is kept byte for
byte and PostgreSQL's encoding check during the COPY refuses the file as before.
"""

from __future__ import annotations

import functools

import pyarrow as pa
import pyarrow.compute as pc

from observatory_storage import vocabulary


@functools.cache
def _table(name: str) -> dict[str, str]:
    return vocabulary.lookup(name)


def _spelled(raw: bytes, table: dict[str, str]) -> bytes | None:
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError:
        return raw  # left to PostgreSQL's refusal
    value = vocabulary.canonical(text, table)
    return None if value is None else value.encode("utf-8")


def normalize(array: pa.Array, name: str) -> pa.Array:
    """``array`` (pa.string()) with every value in vocabulary ``name``'s spelling."""
    if array.null_count == len(array):
        return array
    table = _table(name)
    encoded = pc.dictionary_encode(array.view(pa.binary()))
    distinct = encoded.dictionary.to_pylist()
    mapped = [_spelled(raw, table) for raw in distinct]
    if mapped == distinct:
        return array
    dictionary = pa.array(mapped, pa.binary())
    decoded = pa.DictionaryArray.from_arrays(encoded.indices, dictionary).dictionary_decode()
    return decoded.view(pa.string())
