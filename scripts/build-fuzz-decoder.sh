#!/usr/bin/env bash
# The compiled OTLP decoder, built for fuzzing (clang, AddressSanitizer + UBSan), into build/fuzz/:
#   od_fuzz_proto, od_fuzz_json   libFuzzer harnesses of the pure-C core (tests/fuzz/od_fuzz.c)
#   od_replay_proto, od_replay_json  the same without libFuzzer or sanitizers (gcc), for valgrind
#   tables.txt                    the tables they read (native.tables_blob())
#   ext/_otlpdecode*.so           the Python extension with ASan+UBSan and libFuzzer coverage,
#                                 for the atheris harness (tests/fuzz/atheris_diff.py)
# Usage: scripts/build-fuzz-decoder.sh [python]   (default: the project's .venv python)
# Run:   build/fuzz/od_fuzz_json -runs=1000000 tests/fuzz/corpus/json   (see docs/otlp.md)
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
PY="${1:-${PYTHON:-.venv/bin/python}}"
CC="${CC:-$(command -v clang-14 || command -v clang)}"
[ -n "$CC" ] || { echo "clang is needed (Debian: apt-get install clang-14 libclang-rt-14-dev)" >&2; exit 2; }
SRC=observatory_storage/ingest/otlp/csrc
OUT=build/fuzz
mkdir -p "$OUT/ext"
PYTHONPATH="$ROOT" "$PY" -c "from observatory_storage.ingest.otlp.native import tables_blob; import sys; sys.stdout.buffer.write(tables_blob())" > "$OUT/tables.txt"
FLAGS=(-std=c11 -D_GNU_SOURCE -g -O1 -fno-omit-frame-pointer -Wall -Wextra -Wno-unused-parameter
       -fsanitize=fuzzer,address,undefined -fno-sanitize-recover=undefined -I"$SRC")
for enc in proto json; do
  json=0; [ "$enc" = json ] && json=1
  "$CC" "${FLAGS[@]}" -DOD_FUZZ_JSON=$json tests/fuzz/od_fuzz.c "$SRC"/od_*.c -o "$OUT/od_fuzz_$enc" -lpthread
done
# replays without libFuzzer or sanitizers, for valgrind (docs/otlp.md: the leak check)
for enc in proto json; do
  json=0; [ "$enc" = json ] && json=1
  "${GCC:-gcc}" -std=c11 -D_GNU_SOURCE -O2 -g -Wall -Wextra -Wno-unused-parameter -I"$SRC" \
    -DOD_FUZZ_MAIN -DOD_FUZZ_JSON=$json tests/fuzz/od_fuzz.c "$SRC"/od_*.c -o "$OUT/od_replay_$enc" -lpthread
done
# the extension (same sources) for atheris: libFuzzer coverage without its main()
CC="$CC" OTLPDECODE_SANITIZE=1 CFLAGS="-fsanitize=fuzzer-no-link" LDSHARED="$CC -shared" \
  PYTHONPATH="$ROOT" "$PY" setup.py -q build_ext --build-lib "$OUT/ext" --build-temp "$OUT/tmp" --force >/dev/null
echo "built: $OUT/od_fuzz_proto $OUT/od_fuzz_json $(ls "$OUT"/ext/observatory_storage/ingest/otlp/_otlpdecode*.so)"
