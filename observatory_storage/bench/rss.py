"""Peak memory of this process, as the memory and decode benchmarks report it."""

from __future__ import annotations

import resource


def peak_rss_mb() -> float:
    """This process's high-water RSS since its exec.

    ``getrusage().ru_maxrss`` is no good here: Linux carries the parent's peak across
    fork and exec, so the child would report the benchmark's own size. ``VmHWM`` belongs
    to the new address space only.
    """
    try:
        with open("/proc/self/status", encoding="ascii") as status:
            for line in status:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) / 1024
    except OSError:
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # KiB on Linux
