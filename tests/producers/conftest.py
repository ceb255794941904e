"""The producers' files, made once per session by the real instrumentation packages.

Venvs are built in parallel, once, under ``.cache/producers`` (see ``build.py``); the
drivers run every session. A producer that cannot be installed (offline, a release
withdrawn) fails the tests naming it and pip's log; ``OBS_SKIP_PRODUCERS=1`` skips them
instead.
"""

from __future__ import annotations

import os
import sys
import time
from concurrent.futures import ThreadPoolExecutor

import pytest

from observatory_storage.settings import PROJECT_ROOT
from tests.producers.build import PRODUCERS, BuildError, Produced, produce

CACHE = PROJECT_ROOT / ".cache" / "producers"


@pytest.fixture(scope="session")
def produced(tmp_path_factory) -> dict[str, Produced]:
    if os.environ.get("OBS_SKIP_PRODUCERS") == "1":
        pytest.skip("OBS_SKIP_PRODUCERS=1: producer fixtures not built")
    out = tmp_path_factory.mktemp("producers")
    started = time.monotonic()
    with ThreadPoolExecutor(max_workers=len(PRODUCERS)) as pool:
        futures = {name: pool.submit(produce, name, CACHE, out) for name in PRODUCERS}
        errors, done = [], {}
        for name, future in futures.items():
            try:
                done[name] = future.result()
            except BuildError as exc:
                errors.append(str(exc))
    if errors:
        pytest.fail("\n\n".join(errors), pytrace=False)
    timings = ", ".join(f"{p.name} build {p.build_seconds:.0f} s run {p.run_seconds:.0f} s"
                        for p in done.values())
    print(f"\nproducers ready in {time.monotonic() - started:.0f} s ({timings})",
          file=sys.stderr)
    return done
