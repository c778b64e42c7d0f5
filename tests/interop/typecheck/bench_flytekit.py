"""flytekit's side of the type-transformer benchmark (issue 3, item 8); not a test.

    python bench_flytekit.py N

Encodes and decodes the mixed value set below N times with flytekit's TypeEngine, in process:
``TypeEngine.to_literal(ctx, value, python_type, literal_type)`` then ``TypeEngine.to_python_value(ctx, literal,
python_type)``, with each literal type computed once beforehand (as flytekit does per task interface). One
"op" is one value encoded and decoded. The set is mirrored value for value by
type-transformers/benches/transform.rs, which runs this script and prints the ratio.

flytekit's ``TypeEngine.to_literal`` keeps an LRU cache of literals keyed by (cloudpickle of the value, of the
type): repeating the same ten values would mostly measure cache hits, not encoding. So the loop is timed twice:
- ``ops_per_sec``: the cache cleared before every ``to_literal`` (each value really encoded, as for the fresh
  outputs of a task; the headline figure);
- ``ops_per_sec_cached``: the cache left alone (encoding mostly skipped: an upper bound for flytekit).

Prints one JSON line: {"n": N, "values": V, "ops": N*V, "seconds": S, "ops_per_sec": R, "seconds_cached": S2,
"ops_per_sec_cached": R2}.
"""

from __future__ import annotations

import dataclasses
import datetime
import json
import logging
import os
import sys
import time
from typing import Dict, List, Optional

os.environ.setdefault("FLYTE_SDK_LOGGING_LEVEL", "40")


@dataclasses.dataclass
class BenchRecord:
    id: int
    name: str
    score: float
    tags: List[str]
    attrs: Dict[str, int]
    note: Optional[str]
    at: datetime.datetime


UTC = datetime.timezone.utc


def value_set():
    """(name, python type, value): the same values, in the same order, as benches/transform.rs."""
    return [
        ("int", int, 1234567),
        ("float", float, 3.25),
        ("str", str, "hello, tern ✓"),
        ("datetime", datetime.datetime, datetime.datetime(2024, 5, 17, 12, 34, 56, 789000, tzinfo=UTC)),
        ("list_int", List[int], list(range(16))),
        ("list_str", List[str], [f"item-{i}" for i in range(8)]),
        ("map_float", Dict[str, float], {f"k{i}": i * 0.5 for i in range(8)}),
        ("optional_some", Optional[int], 7),
        ("optional_none", Optional[int], None),
        (
            "record",
            BenchRecord,
            BenchRecord(
                id=99,
                name="record",
                score=0.75,
                tags=["a", "b", "c"],
                attrs={"x": 1, "y": 2},
                note=None,
                at=datetime.datetime(2024, 1, 1, tzinfo=UTC),
            ),
        ),
    ]


def main(argv) -> int:
    n = int(argv[1]) if len(argv) > 1 else 1000
    logging.getLogger("flytekit").setLevel(logging.ERROR)
    from flytekit import FlyteContextManager
    from flytekit.core.type_engine import TypeEngine

    ctx = FlyteContextManager.current_context()
    values = [(name, t, v, TypeEngine.to_literal_type(t)) for name, t, v in value_set()]

    # Correctness first (and warm-up: transformer lookups, encoder caches).
    for name, t, v, lt in values:
        back = TypeEngine.to_python_value(ctx, TypeEngine.to_literal(ctx, v, t, lt), t)
        if back != v:
            print(f"bench_flytekit: {name} round-tripped to {back!r}, not {v!r}", file=sys.stderr)
            return 1

    cache = TypeEngine._LITERAL_CACHE
    start = time.perf_counter()
    for _ in range(n):
        for _name, t, v, lt in values:
            cache.clear()
            lit = TypeEngine.to_literal(ctx, v, t, lt)
            TypeEngine.to_python_value(ctx, lit, t)
    seconds = time.perf_counter() - start

    start = time.perf_counter()
    for _ in range(n):
        for _name, t, v, lt in values:
            lit = TypeEngine.to_literal(ctx, v, t, lt)
            TypeEngine.to_python_value(ctx, lit, t)
    seconds_cached = time.perf_counter() - start

    ops = n * len(values)
    print(
        json.dumps(
            {
                "n": n,
                "values": len(values),
                "ops": ops,
                "seconds": seconds,
                "ops_per_sec": ops / seconds,
                "seconds_cached": seconds_cached,
                "ops_per_sec_cached": ops / seconds_cached,
            }
        )
    )
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
