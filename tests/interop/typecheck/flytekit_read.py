"""Decodes literals written by Tern with flytekit's TypeEngine and checks them against the expected values.

    python flytekit_read.py IN_DIR [--skip NAME,NAME...]

For every case of cases.py, reads IN_DIR/<case>.literal.pb (a serialized flyteidl Literal), decodes it with
``TypeEngine.to_python_value(ctx, literal, case.reader_type)`` and asserts that ``case.normalize(value)`` equals
``case.expected`` strictly (same Python types all the way down: ``True`` is not ``1``, ``1`` is not ``1.0``).
Blobs and dataframes are downloaded through a local FileAccessProvider whose sandbox is IN_DIR/flytekit-sandbox.

A case whose file is missing is a mismatch, unless it is named by --skip (cases the Rust side cannot write yet;
they are listed as skipped). A ``.literal.pb`` with no case of that name is a mismatch too.
Prints one line per mismatch and a summary line; exit 1 if anything mismatched.
"""

from __future__ import annotations

import dataclasses
import datetime
import enum
import logging
import os
import sys
import traceback
from pathlib import Path
from typing import Any, List

os.environ.setdefault("FLYTE_SDK_LOGGING_LEVEL", "40")

from cases import cases_by_name  # noqa: E402


def strict_diff(got: Any, want: Any, path: str = "value") -> List[str]:
    """Differences between two values, comparing Python types as well as values (recursively)."""
    if type(got) is not type(want):
        return [f"{path}: got {type(got).__name__} {got!r}, want {type(want).__name__} {want!r}"]
    if isinstance(want, dict):
        out = []
        if list(got.keys()) != list(want.keys()) and set(got.keys()) != set(want.keys()):
            return [f"{path}: keys {sorted(map(str, got.keys()))}, want {sorted(map(str, want.keys()))}"]
        for k in want:
            out += strict_diff(got[k], want[k], f"{path}[{k!r}]")
        return out
    if isinstance(want, (list, tuple)):
        if len(got) != len(want):
            return [f"{path}: length {len(got)} {got!r}, want {len(want)} {want!r}"]
        out = []
        for i, (g, w) in enumerate(zip(got, want)):
            out += strict_diff(g, w, f"{path}[{i}]")
        return out
    if dataclasses.is_dataclass(want) and not isinstance(want, type):
        out = []
        for f in dataclasses.fields(want):
            out += strict_diff(getattr(got, f.name), getattr(want, f.name), f"{path}.{f.name}")
        return out
    if isinstance(want, float):
        # bit-exact: 0.0 vs -0.0 and every last digit count
        return [] if repr(got) == repr(want) else [f"{path}: got {got!r}, want {want!r}"]
    if isinstance(want, datetime.datetime):
        if got != want or got.utcoffset() != want.utcoffset():
            return [f"{path}: got {got.isoformat()}, want {want.isoformat()}"]
        return []
    if isinstance(want, enum.Enum):
        return [] if got is want else [f"{path}: got {got!r}, want {want!r}"]
    return [] if got == want else [f"{path}: got {got!r}, want {want!r}"]


def local_context(base: Path):
    from flytekit import FlyteContextManager
    from flytekit.core.data_persistence import FileAccessProvider

    sandbox = base / "flytekit-sandbox"
    sandbox.mkdir(parents=True, exist_ok=True)
    fa = FileAccessProvider(local_sandbox_dir=str(sandbox), raw_output_prefix=str(sandbox / "raw"))
    ctx = FlyteContextManager.current_context().with_file_access(fa).build()
    return FlyteContextManager.with_context(ctx.new_builder())


def main(argv) -> int:
    args = argv[1:]
    skip = set()
    if "--skip" in args:
        i = args.index("--skip")
        skip = {s for s in args[i + 1].split(",") if s} if i + 1 < len(args) else set()
        del args[i : i + 2]
    if len(args) != 1:
        print(__doc__, file=sys.stderr)
        return 2
    logging.getLogger("flytekit").setLevel(logging.ERROR)

    from flyteidl.core import literals_pb2
    from flytekit.core.type_engine import TypeEngine
    from flytekit.models.literals import Literal

    in_dir = Path(args[0]).resolve()
    cases = cases_by_name()
    mismatches: List[str] = []
    passed = skipped = 0

    unknown_skips = sorted(skip - set(cases))
    if unknown_skips:
        mismatches.append(f"--skip names no case: {unknown_skips}")
    present = {p.name[: -len(".literal.pb")] for p in in_dir.glob("*.literal.pb")}
    for extra in sorted(present - set(cases)):
        mismatches.append(f"{extra}: {extra}.literal.pb has no case of that name in cases.py")

    with local_context(in_dir) as ctx:
        for name, case in cases.items():
            path = in_dir / f"{name}.literal.pb"
            if name in skip:
                skipped += 1
                if path.exists():
                    mismatches.append(f"{name}: skipped but {path.name} exists (drop it from --skip)")
                continue
            if not path.exists():
                mismatches.append(f"{name}: {path.name} was not written")
                continue
            try:
                pb = literals_pb2.Literal()
                pb.ParseFromString(path.read_bytes())
                value = TypeEngine.to_python_value(ctx, Literal.from_flyte_idl(pb), case.reader_type)
                diffs = strict_diff(case.normalize(value), case.expected)
            except Exception as e:  # noqa: BLE001  (a decoding failure is this case's mismatch)
                diffs = [f"flytekit could not decode it: {type(e).__name__}: {e}"]
                if os.environ.get("TERN_TYPECHECK_TRACEBACK"):
                    traceback.print_exc()
            if diffs:
                mismatches.extend(f"{name}: {d}" for d in diffs)
            else:
                passed += 1

    for m in mismatches:
        print(f"MISMATCH {m}")
    failed_cases = len({m.split(":", 1)[0] for m in mismatches})
    print(f"flytekit_read: {passed} cases decoded as expected, {failed_cases} mismatched, {skipped} skipped")
    return 1 if mismatches else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
