"""Writes flytekit's literals for every cross-check case (see cases.py).

    python flytekit_write.py OUT_DIR     # per case: OUT_DIR/<case>.literal.pb and OUT_DIR/<case>.type.pb,
                                         # and OUT_DIR/cases.txt: every case name, one per line
    python flytekit_write.py --list      # the case names, one per line

Each literal is ``TypeEngine.to_literal(ctx, value, python_type, TypeEngine.to_literal_type(python_type))``
serialized with ``SerializeToString(deterministic=True)`` (map entries sorted by key), and each type is
``TypeEngine.to_literal_type(python_type)`` serialized the same way. Files, directories and dataframes are uploaded
under OUT_DIR/data through a local FileAccessProvider (raw_output_prefix OUT_DIR/data/raw), to fixed destinations
so that their literals are deterministic too. Prints one line per case and a summary; exit 1 if any case failed.
"""

from __future__ import annotations

import contextlib
import logging
import os
import sys
import traceback
from pathlib import Path

os.environ.setdefault("FLYTE_SDK_LOGGING_LEVEL", "40")  # flytekit's own logger: errors only

from cases import cases_by_name  # noqa: E402  (after the logging environment is set)


def local_context(base: Path):
    """A FlyteContext whose data persistence is a local directory (OUT_DIR/data/raw) with a sandbox beside it."""
    from flytekit import FlyteContextManager
    from flytekit.core.data_persistence import FileAccessProvider

    sandbox = base / "sandbox"
    raw = base / "data" / "raw"
    sandbox.mkdir(parents=True, exist_ok=True)
    raw.mkdir(parents=True, exist_ok=True)
    fa = FileAccessProvider(local_sandbox_dir=str(sandbox), raw_output_prefix=str(raw))
    ctx = FlyteContextManager.current_context().with_file_access(fa).build()
    return FlyteContextManager.with_context(ctx.new_builder())


@contextlib.contextmanager
def patched_env(env):
    saved = {k: os.environ.get(k) for k in env}
    os.environ.update(env)
    try:
        yield
    finally:
        for k, v in saved.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v


def main(argv) -> int:
    if len(argv) == 2 and argv[1] == "--list":
        for name in cases_by_name():
            print(name)
        return 0
    if len(argv) != 2:
        print(__doc__, file=sys.stderr)
        return 2
    logging.getLogger("flytekit").setLevel(logging.ERROR)

    from flytekit.core.type_engine import TypeEngine

    out = Path(argv[1]).resolve()
    out.mkdir(parents=True, exist_ok=True)
    data = out / "data"
    failed = []
    cases = cases_by_name()
    (out / "cases.txt").write_text("".join(f"{name}\n" for name in cases))
    with local_context(out) as ctx:
        for name, case in cases.items():
            try:
                lt = TypeEngine.to_literal_type(case.python_type)
                # TypeEngine.to_literal caches literals by (value, type): an earlier case with an equal value but
                # another environment (dataclass vs dataclass_generic) must not answer for this one.
                TypeEngine._LITERAL_CACHE.clear()
                with patched_env(case.env):
                    lit = TypeEngine.to_literal(ctx, case.make(data), case.python_type, lt)
                (out / f"{name}.type.pb").write_bytes(lt.to_flyte_idl().SerializeToString(deterministic=True))
                (out / f"{name}.literal.pb").write_bytes(lit.to_flyte_idl().SerializeToString(deterministic=True))
                print(f"wrote {name}")
            except Exception:  # noqa: BLE001  (reported per case, and the exit code says it)
                failed.append(name)
                print(f"FAILED {name}:\n{traceback.format_exc()}", file=sys.stderr)
    print(f"flytekit_write: {len(cases) - len(failed)} written, {len(failed)} failed" + (f": {failed}" if failed else ""))
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
