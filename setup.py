"""The optional compiled OTLP decoder (observatory_storage/ingest/otlp/_otlpdecode).

pyproject.toml holds the package metadata; this file only declares the C extension.
``optional=True``: without a C compiler (or if the build fails) ``pip install -e .``
still succeeds and the Python decoder is used (ingest/otlp/native.py says which ran).

OTLPDECODE_SANITIZE=1 builds it with AddressSanitizer + UndefinedBehaviorSanitizer
(clang; for fuzzing and the leak checks: scripts/build-fuzz-decoder.sh).
"""

import hashlib
import os
from glob import glob

from setuptools import Extension, setup

HERE = "observatory_storage/ingest/otlp"
SOURCES = [f"{HERE}/_otlpdecode.c", *sorted(glob(f"{HERE}/csrc/od_*.c"))]
HEADERS = sorted(glob(f"{HERE}/csrc/*.h"))


def source_hash() -> str:
    """Of the C sources, compiled in: native.py tells a stale build from the sources."""
    digest = hashlib.sha256()
    for path in sorted(SOURCES + HEADERS):
        digest.update(os.path.basename(path).encode() + b"\0")
        with open(path, "rb") as f:
            digest.update(f.read())
    return digest.hexdigest()[:16]

compile_args = ["-O2", "-std=c11", "-D_GNU_SOURCE", "-Wall", "-Wextra", "-Wno-unused-parameter",
                "-fvisibility=hidden"]
link_args: list[str] = []
if os.environ.get("OTLPDECODE_SANITIZE") == "1":
    flags = ["-fsanitize=address,undefined", "-fno-sanitize-recover=undefined",
             "-fno-omit-frame-pointer", "-g", "-O1"]
    compile_args = [a for a in compile_args if a != "-O2"] + flags
    link_args += flags

setup(
    ext_modules=[
        Extension(
            "observatory_storage.ingest.otlp._otlpdecode",
            sources=SOURCES,
            depends=HEADERS,
            define_macros=[("OD_SOURCE_HASH", f'"{source_hash()}"')],
            extra_compile_args=compile_args,
            extra_link_args=link_args,
            optional=True,
        )
    ],
)
