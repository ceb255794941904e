"""atheris harness: whole OTLP files through both decoders (tests/fuzz/otlp_diff.py).

A finding is any difference between the compiled decoder and the Python reference (rows,
values, batches, unusable counts; or the error's column, row and where), a crash, or a
batch pyarrow finds malformed. Mutations are structure-aware (tests/fuzz/mutate.py: JSON
trees and protobuf wire trees of real SDK messages), mixed with libFuzzer's own.

    python tests/fuzz/atheris_diff.py /tmp/new-inputs tests/fuzz/corpus/files \
        tests/fuzz/corpus/json tests/fuzz/corpus/proto -runs=2000 -seed=1

(libFuzzer writes the inputs it finds into the first folder: never the committed corpus.)

With OTLPDECODE_EXTENSION=build/fuzz/ext/.../_otlpdecode*.so (scripts/build-fuzz-decoder.sh)
the extension built with ASan + UBSan and libFuzzer coverage is loaded instead, under
atheris's own ASan + libFuzzer runtime (its coverage of the C code then guides the run):

    LD_PRELOAD="$(python -c 'import atheris; print(atheris.path())')/asan_with_fuzzer.so" \
    ASAN_OPTIONS=detect_leaks=0 OTLPDECODE_EXTENSION=$(ls build/fuzz/ext/*/*/*/_otlpdecode*.so) \
    python tests/fuzz/atheris_diff.py /tmp/new-inputs tests/fuzz/corpus/* -max_total_time=1800
"""

from __future__ import annotations

import importlib.util
import os
import random
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))
sys.setrecursionlimit(20000)

import atheris  # noqa: E402

_EXT = os.environ.get("OTLPDECODE_EXTENSION")
if _EXT:  # the sanitized build, in place of the regular one
    _NAME = "observatory_storage.ingest.otlp._otlpdecode"
    _spec = importlib.util.spec_from_file_location(_NAME, _EXT)
    _mod = importlib.util.module_from_spec(_spec)
    _spec.loader.exec_module(_mod)
    sys.modules[_NAME] = _mod

with atheris.instrument_imports(include=["observatory_storage.ingest.otlp"]):
    from observatory_storage.ingest.otlp import native  # noqa: E402

from tests.fuzz import mutate, otlp_diff  # noqa: E402

assert native.available, native.IMPORT_ERROR


def test_one_input(data: bytes) -> None:
    diffs = otlp_diff.differences(data, batch_size=1 + len(data) % 4)
    if diffs:
        raise AssertionError(f"{len(data)} bytes: " + "; ".join(diffs)[:2000])


def custom_mutator(data: bytes, max_size: int, seed: int) -> bytes:
    rng = random.Random(seed)
    out = None
    if rng.random() < 0.7:
        try:
            if data[:1] == b"{":
                doc = mutate.parse(data)
                mutated = (mutate.mutate_json_mild if rng.random() < 0.6 else mutate.mutate_json)(
                    doc, rng, rng.choice([1, 2, 4]))
                out = mutate.dump_json(mutated, rng).encode()
            elif data[:1] == b"\x0a":
                out = mutate.dump_pb(mutate.mutate_pb(mutate.parse_pb(data), rng, rng.choice([1, 2, 4])), rng)
        except (ValueError, RecursionError):
            out = None
    if out is None:
        out = atheris.Mutate(data, max_size)
    return out[:max_size]


if __name__ == "__main__":
    atheris.Setup(sys.argv, test_one_input, custom_mutator=custom_mutator)
    atheris.Fuzz()
