"""Process-wide allocator settings that keep the extractor's memory flat as volume grows.

Measured (bench/bench_extract.py): without them peak RSS grows from ~300 MB to 500+ MB with
concurrency 8, although the live data stays the same; both allocators just keep freed memory.
"""

from __future__ import annotations

import ctypes
import logging
import os
import sys

log = logging.getLogger(__name__)

_M_MMAP_THRESHOLD = -3  # mallopt parameter number, glibc malloc.h
_MMAP_THRESHOLD_BYTES = 1 << 20


# Optional packages that DuckDB's Python client imports on the first query with parameters, to
# recognise their types; the extractor passes only plain Python values, and the two imports alone
# add ~120 MB of RSS.
_UNUSED_OPTIONAL_IMPORTS = ("pandas", "pyarrow")


def keep_memory_flat() -> None:
    """Call at process start, before duckdb is imported."""
    for name in _UNUSED_OPTIONAL_IMPORTS:
        sys.modules.setdefault(name, None)  # type: ignore[arg-type]  # `import` then fails fast
    # DuckDB's bundled jemalloc keeps freed pages for seconds, hundreds of MB with multi-kB
    # payloads; return them at once. Read when duckdb is first loaded.
    os.environ.setdefault("DUCKDB_JE_MALLOC_CONF", "dirty_decay_ms:0,muzzy_decay_ms:0")
    # glibc raises its mmap threshold after each large free, so multi-MB response bodies land
    # in per-thread arenas that never shrink; a fixed threshold keeps them mmapped and returned.
    try:
        libc = ctypes.CDLL("libc.so.6")
    except OSError:
        log.debug("not glibc: allocator left as it is")
        return
    libc.mallopt(_M_MMAP_THRESHOLD, _MMAP_THRESHOLD_BYTES)
