"""The fixed value set of the flytekit <-> Tern type cross-check (issue 3, item 6).

This module is the single definition of the case list. `flytekit_write.py` writes one literal per case with
flytekit's TypeEngine, `flytekit_read.py` decodes the literals Tern wrote with flytekit's TypeEngine, and the
Rust test `type-transformers/tests/flytekit_crosscheck.rs` mirrors every case under the same name (a case present
on one side and not the other fails that test: it reads the names from the cases.txt flytekit_write.py writes).

A case has:
- ``python_type``: the type flytekit writes the value with (``TypeEngine.to_literal_type`` / ``to_literal``);
- ``read_type``: the type flytekit reads Tern's literal with (defaults to ``python_type``); the dataframe
  column-subset case reads with a narrower declared schema than it writes with;
- ``make(data_dir)``: builds the Python value (files, directories and frames need a scratch directory; their
  upload destination is fixed under ``data_dir`` so the literal's uri is deterministic);
- ``expected``: the comparable form of the value flytekit must decode (``normalize(decoded) == expected``);
- ``env``: environment variables set while flytekit writes the case (``FLYTE_USE_OLD_DC_FORMAT=true`` makes
  flytekit write the pre-1.14 Generic Struct form of dicts and dataclasses, which Tern must still read);
- ``normalize``: turns a decoded Python value into that comparable form (identity for plain values; file
  contents for FlyteFile/FlyteDirectory; per-column Python values for DataFrames).
"""

# No `from __future__ import annotations` here: flytekit reads dataclass field types from `dataclasses.fields()`,
# and postponed annotations would hand it strings.
import dataclasses
import datetime
import enum
import math
import os
from pathlib import Path
from typing import Any, Callable, Dict, List, Optional, Union

try:  # Annotated lives in typing from 3.9; flytekit supports 3.9+
    from typing import Annotated
except ImportError:  # pragma: no cover
    from typing_extensions import Annotated


# ----------------------------------------------------------------------------------------------------------------
# user-defined types (mirrored in Rust by `#[derive(FlyteType)]` types of the same names, fields in the same order)
# ----------------------------------------------------------------------------------------------------------------


class Color(enum.Enum):
    """A fieldless enum: flytekit writes EnumType(values) and the value's string. Values are the Rust variant names."""

    Red = "Red"
    Green = "Green"
    Blue = "Blue"


@dataclasses.dataclass
class Inner:
    label: str
    weight: float


@dataclasses.dataclass
class Record:
    """A dataclass with every field kind the derive supports (msgpack Binary literal in flytekit >= 1.14)."""

    count: int
    ratio: float
    name: str
    active: bool
    scores: List[int]
    extras: Dict[str, float]  # keys inserted in sorted order: msgpack keeps insertion order, Rust uses a BTreeMap
    maybe: Optional[int]
    missing: Optional[str]
    inner: Inner
    color: Color


@dataclasses.dataclass
class Packet:
    """A dataclass with a ``bytes`` field (msgpack ``bin``; a top-level ``bytes`` has no literal form in flytekit,
    which pickles it, so this is where bytes are cross-checked)."""

    payload: bytes
    size: int


# ----------------------------------------------------------------------------------------------------------------
# the case type
# ----------------------------------------------------------------------------------------------------------------


def _identity(v: Any) -> Any:
    return v


@dataclasses.dataclass(frozen=True)
class Case:
    name: str
    python_type: Any
    make: Callable[[Path], Any]
    expected: Any
    normalize: Callable[[Any], Any] = _identity
    read_type: Any = None
    # environment set while flytekit writes the case (e.g. FLYTE_USE_OLD_DC_FORMAT for the pre-1.14 forms)
    env: Dict[str, str] = dataclasses.field(default_factory=dict)

    @property
    def reader_type(self) -> Any:
        return self.python_type if self.read_type is None else self.read_type


def _const(value: Any) -> Callable[[Path], Any]:
    return lambda _data_dir: value


def plain(name: str, python_type: Any, value: Any) -> Case:
    return Case(name=name, python_type=python_type, make=_const(value), expected=value)


# ----------------------------------------------------------------------------------------------------------------
# files, directories and dataframes
# ----------------------------------------------------------------------------------------------------------------

FILE_NAME = "hello.txt"
FILE_CONTENT = "hello from the cross-check: héllo ✓\n".encode()

# relative path -> content (a nested sub-directory checks multipart listing and download)
DIR_FILES: Dict[str, bytes] = {
    "a.txt": b"alpha\n",
    "b.csv": b"x,y\n1,2\n",
    "sub/c.bin": bytes(range(256)),
}


def file_destination(data_dir: Path) -> str:
    """Where flytekit uploads the file case: fixed, so the Blob uri (and so the literal's bytes) is deterministic."""
    return str(Path(data_dir) / "file" / FILE_NAME)


def dir_destination(data_dir: Path) -> str:
    return str(Path(data_dir) / "directory")


def dataframe_destination(data_dir: Path) -> str:
    return str(Path(data_dir) / "dataframe")


def _make_file(data_dir: Path):
    from flytekit.types.file import FlyteFile

    src = Path(data_dir) / "src" / FILE_NAME
    src.parent.mkdir(parents=True, exist_ok=True)
    src.write_bytes(FILE_CONTENT)
    return FlyteFile(str(src), remote_path=file_destination(data_dir))


def _make_dir(data_dir: Path):
    from flytekit.types.directory import FlyteDirectory

    src = Path(data_dir) / "src" / "directory"
    for rel, content in DIR_FILES.items():
        p = src / rel
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_bytes(content)
    return FlyteDirectory(str(src), remote_directory=dir_destination(data_dir))


def _normalize_file(f: Any) -> bytes:
    with open(f.download(), "rb") as fh:
        return fh.read()


def _normalize_dir(d: Any) -> Dict[str, bytes]:
    root = Path(d.download())
    out = {}
    for dirpath, _dirnames, filenames in os.walk(root):
        for fn in filenames:
            p = Path(dirpath) / fn
            out[p.relative_to(root).as_posix()] = p.read_bytes()
    return dict(sorted(out.items()))


# The frame: int, float, str (unicode), bool and timestamp columns. Timestamps are UTC instants at microsecond
# precision (pandas' default unit for parsed timestamps; Arrow/Parquet keep it exactly).
FRAME_COLUMNS: Dict[str, List[Any]] = {
    "id": [1, 2, -3],
    "score": [0.5, -1.25, 1e10],
    "name": ["alpha", "βeta", "gamma ✓"],
    "flag": [True, False, True],
    "at": [
        datetime.datetime(2024, 1, 2, 3, 4, 5, 123456, tzinfo=datetime.timezone.utc),
        datetime.datetime(1999, 12, 31, 23, 59, 59, tzinfo=datetime.timezone.utc),
        datetime.datetime(2030, 6, 15, 0, 0, 0, 1, tzinfo=datetime.timezone.utc),
    ],
}
FRAME_SUBSET = ("name", "id")  # a declared column subset, in a different order than the file's


def _frame_schema(columns) -> Any:
    from flytekit import kwtypes

    py = {"id": int, "score": float, "name": str, "flag": bool, "at": datetime.datetime}
    return kwtypes(**{c: py[c] for c in columns})


def _make_frame(data_dir: Path):
    import pandas as pd
    from flytekit.types.structured import StructuredDataset

    df = pd.DataFrame(
        {
            "id": pd.Series(FRAME_COLUMNS["id"], dtype="int64"),
            "score": pd.Series(FRAME_COLUMNS["score"], dtype="float64"),
            "name": pd.Series(FRAME_COLUMNS["name"], dtype="str"),
            "flag": pd.Series(FRAME_COLUMNS["flag"], dtype="bool"),
            "at": pd.Series(FRAME_COLUMNS["at"], dtype="datetime64[us, UTC]"),
        }
    )
    # A fixed uri: flytekit writes the parquet under it, and the literal (uri + metadata) is deterministic.
    return StructuredDataset(dataframe=df, uri=dataframe_destination(data_dir))


def _py_scalar(v: Any) -> Any:
    """numpy/pandas scalars -> plain Python values; timestamps -> ISO text in UTC (naive ones are taken as UTC)."""
    import pandas as pd

    if isinstance(v, pd.Timestamp):
        if v.tzinfo is None:
            v = v.tz_localize("UTC")
        return v.tz_convert("UTC").isoformat()
    if hasattr(v, "item"):
        v = v.item()
    if isinstance(v, float) and math.isnan(v):
        return "NaN"
    return v


def _normalize_frame(df: Any) -> Dict[str, List[Any]]:
    """A DataFrame (or a StructuredDataset opened as one) -> {column: [values]} in the frame's column order."""
    import pandas as pd

    if not isinstance(df, pd.DataFrame):
        df = df.open(pd.DataFrame).all()
    return {str(c): [_py_scalar(v) for v in df[c].tolist()] for c in df.columns}


def _expected_frame(columns) -> Dict[str, List[Any]]:
    out = {}
    for c in columns:
        vals = FRAME_COLUMNS[c]
        out[c] = [v.isoformat() for v in vals] if c == "at" else list(vals)
    return out


def _frame_types():
    import pandas as pd

    full = Annotated[pd.DataFrame, _frame_schema(FRAME_COLUMNS)]
    subset = Annotated[pd.DataFrame, _frame_schema(FRAME_SUBSET)]
    return full, subset


# ----------------------------------------------------------------------------------------------------------------
# the cases
# ----------------------------------------------------------------------------------------------------------------

UTC = datetime.timezone.utc

RECORD = Record(
    count=42,
    ratio=0.25,
    name="rëcord ✓",
    active=True,
    scores=[3, -1, 4, 1, -5, 9, 200, -200, 70000, -2**40],
    extras={"a": 1.5, "b": -2.0, "z": 1e-300},
    maybe=7,
    missing=None,
    inner=Inner(label="in", weight=2.5),
    color=Color.Blue,
)


def build_cases() -> List[Case]:
    from flytekit.types.directory import FlyteDirectory
    from flytekit.types.file import FlyteFile
    from flytekit.types.structured import StructuredDataset

    frame_full, frame_subset = _frame_types()
    frame_sd_full = Annotated[StructuredDataset, _frame_schema(FRAME_COLUMNS)]

    return [
        plain("bool_true", bool, True),
        plain("bool_false", bool, False),
        plain("int_positive", int, 42),
        plain("int_negative", int, -9_007_199_254_740_993),  # not representable as a double: stays an int64
        plain("int_max", int, 2**63 - 1),
        plain("float", float, 3.141592653589793),
        plain("float_negative_tiny", float, -2.5e-300),
        plain("str_unicode", str, "héllo, wörld — 日本語 🚀 \"quoted\"\n"),
        plain("str_empty", str, ""),
        plain("datetime", datetime.datetime, datetime.datetime(2024, 5, 17, 12, 34, 56, 789012, tzinfo=UTC)),
        plain("datetime_pre_epoch", datetime.datetime, datetime.datetime(1969, 7, 20, 20, 17, 40, 1, tzinfo=UTC)),
        plain("timedelta", datetime.timedelta, datetime.timedelta(days=1, hours=2, minutes=3, seconds=4, microseconds=567890)),
        plain("timedelta_negative", datetime.timedelta, -datetime.timedelta(seconds=90, microseconds=250000)),
        plain("list_int", List[int], [1, -2, 3, 0, 2**40]),
        plain("list_empty", List[int], []),
        plain("list_list_str", List[List[str]], [["a", "b"], [], ["ü"]]),
        plain("dict_str_float", Dict[str, float], {"a": 1.5, "b": -2.25, "ü": 0.0}),
        plain("dict_str_list_int", Dict[str, List[int]], {"evens": [0, 2, 4], "none": []}),
        plain("optional_int_some", Optional[int], 5),
        plain("optional_int_none", Optional[int], None),
        plain("union_int_str_int", Union[int, str], 7),
        plain("union_int_str_str", Union[int, str], "seven"),
        plain("enum", Color, Color.Green),
        plain("dataclass", Record, RECORD),
        # The same dataclass in flytekit's pre-1.14 form (a Generic Struct: every number a double).
        dataclasses.replace(plain("dataclass_generic", Record, RECORD), env={"FLYTE_USE_OLD_DC_FORMAT": "true"}),
        plain("dataclass_bytes", Packet, Packet(payload=bytes([0, 1, 2, 253, 254, 255]) + "✓".encode(), size=9)),
        # An untyped dict: flytekit writes it as a msgpack Binary with LiteralType STRUCT (the Rust side is
        # JsonDict). Keys are in sorted order so msgpack's insertion order equals serde_json's (sorted) Map.
        plain("json_dict", dict, {"a": 1, "b": [1, 2.5, "x", None, True], "c": {"d": {"e": "f"}}, "n": -3}),
        # An untyped dict in flytekit's pre-1.14 form, a Generic Struct (the Rust side is serde_json::Value, which
        # writes that form). Struct numbers are doubles, so the value has no integers.
        dataclasses.replace(
            plain("generic_struct", dict, {"a": 1.5, "b": [2.5, "x", None, True], "c": {"d": "e", "f": -0.25}}),
            env={"FLYTE_USE_OLD_DC_FORMAT": "true"},
        ),
        Case(
            name="file",
            python_type=FlyteFile,
            make=_make_file,
            expected=FILE_CONTENT,
            normalize=_normalize_file,
        ),
        Case(
            name="file_csv",
            python_type=FlyteFile["csv"],
            make=_make_csv_file,
            expected=CSV_CONTENT,
            normalize=_normalize_file,
        ),
        Case(
            name="directory",
            python_type=FlyteDirectory,
            make=_make_dir,
            expected=dict(sorted(DIR_FILES.items())),
            normalize=_normalize_dir,
        ),
        Case(
            name="dataframe",
            python_type=frame_sd_full,
            make=_make_frame,
            expected=_expected_frame(FRAME_COLUMNS),
            normalize=_normalize_frame,
            read_type=frame_full,
        ),
        Case(
            name="dataframe_subset",
            python_type=frame_sd_full,
            make=lambda d: _make_frame_at(d, "dataframe_subset"),
            expected=_expected_frame(FRAME_SUBSET),
            normalize=_normalize_frame,
            read_type=frame_subset,
        ),
    ]


CSV_NAME = "table.csv"
CSV_CONTENT = b"id,name\n1,alpha\n2,beta\n"


def _make_csv_file(data_dir: Path):
    from flytekit.types.file import FlyteFile

    src = Path(data_dir) / "src" / CSV_NAME
    src.parent.mkdir(parents=True, exist_ok=True)
    src.write_bytes(CSV_CONTENT)
    return FlyteFile["csv"](str(src), remote_path=str(Path(data_dir) / "file_csv" / CSV_NAME))


def _make_frame_at(data_dir: Path, sub: str):
    sd = _make_frame(data_dir)
    sd.uri = str(Path(data_dir) / sub)
    return sd


def cases_by_name() -> Dict[str, Case]:
    cases = build_cases()
    names = [c.name for c in cases]
    dupes = sorted({n for n in names if names.count(n) > 1})
    if dupes:
        raise AssertionError(f"cases.py: duplicate case names {dupes}")
    return {c.name: c for c in cases}
