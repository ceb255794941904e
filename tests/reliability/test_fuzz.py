"""Property tests of the reader -> conform -> COPY -> ledger path on a real database.

Whatever a landing file holds (random columns named after the contract or junk, random
types and nulls, or the bytes of a valid file truncated or bit-flipped), ``load_objects``
must end it ``loaded`` or ``quarantined`` and never raise; a loaded file's row count must
be the file's, in the ledger and in the table.
"""

from __future__ import annotations

import itertools
import json
import os
from datetime import UTC

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from hypothesis import HealthCheck, given
from hypothesis import settings as hsettings
from hypothesis import strategies as st

from observatory_storage.datasets import DATASETS
from observatory_storage.ingest.loader import load_objects
from observatory_storage.landing import open_landing
from tests.reliability.corpus import ipc_bytes, parquet_bytes, traces_table

FUZZ = hsettings(
    max_examples=int(os.environ.get("OBS_FUZZ_EXAMPLES", "30")),
    # CI replays the same examples every run (a red build is reproducible); a developer
    # run explores new ones, and OBS_FUZZ_EXAMPLES=400 explores more.
    derandomize=bool(os.environ.get("CI")),
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
_keys = itertools.count()

CONTRACT_NAMES = sorted({c.name for d in DATASETS.values() for c in d.columns})
NAMES = st.one_of(
    st.sampled_from(CONTRACT_NAMES),
    st.sampled_from([n.upper() for n in CONTRACT_NAMES]),
    st.text(min_size=1, max_size=12),
)


def _plain(type_: pa.DataType, values: st.SearchStrategy) -> tuple:
    return type_, values


_JSON = st.recursive(
    st.none() | st.booleans() | st.integers(-10, 10) | st.text(max_size=5),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=4), inner, max_size=3),
    max_leaves=8,
)

TYPES = [
    _plain(pa.int32(), st.integers(-(2**31), 2**31 - 1)),
    _plain(pa.int64(), st.integers(-(2**63), 2**63 - 1)),
    _plain(pa.float64(), st.floats()),
    _plain(pa.string(), st.text(max_size=20)),
    _plain(pa.bool_(), st.booleans()),
    _plain(pa.timestamp("us", tz="UTC"), st.datetimes(timezones=st.just(UTC))),
    _plain(pa.date32(), st.dates()),
    _plain(pa.binary(), st.binary(max_size=16)),
    _plain(pa.list_(pa.int64()), st.lists(st.integers(-5, 5), max_size=3)),
    _plain(pa.struct([("a", pa.string())]), st.fixed_dictionaries({"a": st.text(max_size=4)})),
    _plain(pa.decimal128(12, 3), st.decimals(min_value=-(10**8), max_value=10**8, places=3)),
    _plain(pa.string(), _JSON.map(lambda v: json.dumps(v))),
]


@st.composite
def columns(draw, rows: int) -> tuple[str, pa.Array]:
    name = draw(NAMES)
    kind = draw(st.sampled_from(["typed", "raw-seconds", "dictionary"]))
    if kind == "raw-seconds":  # epoch seconds far outside any calendar
        ints = draw(st.lists(st.none() | st.integers(-(2**40), 2**40), min_size=rows, max_size=rows))
        return name, pa.array(ints, pa.int64()).view(pa.timestamp("s"))
    type_, values = draw(st.sampled_from(TYPES))
    data = draw(st.lists(st.none() | values, min_size=rows, max_size=rows))
    array = pa.array(data, type_)
    if kind == "dictionary" and pa.types.is_string(type_):
        array = array.dictionary_encode()
    return name, array


@st.composite
def tables(draw) -> tuple[str, pa.Table]:
    """A dataset and a table: random columns, often on top of a valid traces batch."""
    dataset = draw(st.sampled_from(sorted(DATASETS)))
    rows = draw(st.integers(0, 12))
    if dataset == "traces" and draw(st.booleans()):
        base = traces_table(rows, tag=f"fz{next(_keys)}")
        names, arrays = list(base.column_names), list(base.columns)
    else:
        names, arrays = [], []
    for name, array in draw(st.lists(columns(rows), max_size=6)):
        if name in names and draw(st.booleans()):  # replace: a wrong type or nulls in a good column
            arrays[names.index(name)] = array
        else:  # append: possibly a duplicate name
            names.append(name)
            arrays.append(array)
    if not names:
        names, arrays = ["junk"], [pa.nulls(rows)]
    return dataset, pa.Table.from_arrays(arrays, names=names)


def _count(db, dataset: str) -> int:
    return db.execute(f"SELECT count(*) FROM {dataset}").fetchone()[0]  # noqa: S608 - contract name


def _load_one(settings, db, key: str, data: bytes):
    landing = open_landing(settings)
    landing.put(key, data)
    dataset = key.split("/", 1)[0]
    before = _count(db, dataset)
    (obj,) = [o for o in landing.list(dataset) if o.key == key]
    report = load_objects(settings, [obj], landing=landing)  # must not raise
    (outcome,) = report.files
    assert outcome.status in ("loaded", "quarantined"), outcome
    ledger_rows = db.execute(
        "SELECT status, row_count, error FROM ingest_files WHERE object_key = %s", (key,)
    ).fetchone()
    assert ledger_rows is not None and ledger_rows[0] == outcome.status
    added = _count(db, dataset) - before
    if outcome.status == "loaded":
        assert outcome.rows == ledger_rows[1] == added
    else:
        assert added == 0 and key in ledger_rows[2]
    return outcome, added


@FUZZ
@given(case=tables(), as_ipc=st.booleans())
def test_random_tables_load_or_quarantine(settings, db, case, as_ipc):
    dataset, table = case
    try:
        data = ipc_bytes(table) if as_ipc else parquet_bytes(table)
    except (pa.ArrowException, ValueError):  # a table the writer itself refuses
        return
    suffix = "arrow" if as_ipc else "parquet"
    outcome, added = _load_one(settings, db, f"{dataset}/t{next(_keys)}.{suffix}", data)
    if outcome.status == "loaded":
        assert added == table.num_rows


_VALID = traces_table(int(os.environ.get("OBS_FUZZ_ROWS", "20")), tag="valid")
VALID_PARQUET = parquet_bytes(_VALID)
VALID_IPC = ipc_bytes(_VALID)


@st.composite
def mutations(draw) -> tuple[bytes, str]:
    source = draw(st.sampled_from([VALID_PARQUET, VALID_IPC]))
    data = bytearray(source)
    how = draw(st.sampled_from(["truncate", "flip", "splice"]))
    if how == "truncate":
        data = data[: draw(st.integers(0, len(data) - 1))]
    elif how == "flip":
        for _ in range(draw(st.integers(1, 8))):
            i = draw(st.integers(0, len(data) - 1))
            data[i] ^= 1 << draw(st.integers(0, 7))
    else:
        i = draw(st.integers(0, len(data)))
        data[i:i] = draw(st.binary(min_size=1, max_size=64))
    return bytes(data), "arrow" if source is VALID_IPC else "parquet"


def _readable_rows(data: bytes, suffix: str) -> int | None:
    """Rows pyarrow itself reads from the bytes, or None when it cannot."""
    try:
        if suffix == "parquet":
            return pq.read_table(pa.BufferReader(data)).num_rows
        return pa.ipc.open_file(pa.BufferReader(data)).read_all().num_rows
    except Exception:  # noqa: BLE001 - any failure means "not readable"
        return None


@FUZZ
@given(mutation=mutations())
def test_mutated_files_load_or_quarantine(settings, db, mutation):
    data, suffix = mutation
    outcome, added = _load_one(settings, db, f"traces/m{next(_keys)}.{suffix}", data)
    if outcome.status == "loaded":
        readable = _readable_rows(data, suffix)
        assert readable is None or added == readable


@pytest.mark.parametrize("cut", [0, 4, 8, 100])
def test_prefixes_of_a_valid_file_quarantine(settings, db, cut):
    """Deterministic companions of the mutation property: short prefixes never load."""
    outcome, added = _load_one(settings, db, f"traces/p{cut}.parquet", VALID_PARQUET[:cut])
    assert (outcome.status, added) == ("quarantined", 0)
