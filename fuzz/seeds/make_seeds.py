"""Writes the fuzz corpora's protocol and literal seeds as flytekit 1.16 and flyteidl produce them.

    $HOME/.cache/tern/venv/bin/python fuzz/seeds/make_seeds.py

Writes fuzz/corpus/{literal,grpc_request,resource_meta,input_text}/seed-*: literals made by flytekit's TypeEngine
(primitives, lists, dicts, Optional, Union, dataclasses as msgpack, Struct, files, directories, structured
datasets), TaskTemplates and CreateTaskRequests as `pyflyte register` and FlytePropeller send them, and handles
shaped like each agent's resource_meta. The input formats are in fuzz/harness.rs. Deterministic: re-running it
rewrites the same files (modulo flytekit's random local paths in blob URIs).
"""
import base64
import datetime
import enum
import json
import struct
import sys
import tempfile
import typing
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "tests" / "interop"))

import tern_interop as ti  # noqa: E402
from flyteidl.admin import agent_pb2 as admin  # noqa: E402
from flyteidl.core import literals_pb2, types_pb2  # noqa: E402
from google.protobuf import struct_pb2  # noqa: E402

CORPUS = ROOT / "fuzz" / "corpus"


def write(target: str, name: str, data: bytes) -> None:
    d = CORPUS / target
    d.mkdir(parents=True, exist_ok=True)
    (d / f"seed-{name}").write_bytes(data)


def frame(message: bytes) -> bytes:
    return b"\x00" + struct.pack(">I", len(message)) + message


# ---------------------------------------------------------------------------------------------------------------
# literals (fuzz target `literal`: form byte 0 = protobuf Literal, 1 = msgpack bytes, 2 = JSON)
# ---------------------------------------------------------------------------------------------------------------
class Color(enum.Enum):
    RED = "Red"
    GREEN = "Green"


@dataclass
class Inner:
    a: int
    b: typing.List[str]


@dataclass
class Point:
    x: int
    y: float
    label: typing.Optional[str]
    tags: typing.List[str]
    color: Color
    inner: typing.Optional[Inner]
    extra: typing.Dict[str, float] = field(default_factory=dict)


def flytekit_literals():
    import pandas as pd
    from flytekit.core.context_manager import FlyteContextManager
    from flytekit.core.type_engine import TypeEngine
    from flytekit.types.directory import FlyteDirectory
    from flytekit.types.file import FlyteFile
    from flytekit.types.structured import StructuredDataset

    ctx = FlyteContextManager.current_context()
    tmp = Path(tempfile.mkdtemp())
    (tmp / "d").mkdir()
    (tmp / "d" / "a.txt").write_text("a")
    (tmp / "f.csv").write_text("x,y\n1,2\n")
    p = Point(x=1, y=2.5, label=None, tags=["a", "b"], color=Color.GREEN, inner=Inner(a=3, b=["c"]), extra={"k": 0.5})
    values = {
        "int": (7, int),
        "negative_int": (-(2**63), int),
        "float": (2.5, float),
        "str": ("héllo", str),
        "bool": (True, bool),
        "datetime": (datetime.datetime(2024, 5, 1, 12, 0, tzinfo=datetime.timezone.utc), datetime.datetime),
        "timedelta": (datetime.timedelta(seconds=90, microseconds=5), datetime.timedelta),
        "list_int": ([1, 2, 3], typing.List[int]),
        "list_list_float": ([[1.0], [2.5, 3.0]], typing.List[typing.List[float]]),
        "dict_str_int": ({"a": 1, "b": 2}, typing.Dict[str, int]),
        "optional_none": (None, typing.Optional[int]),
        "optional_int": (3, typing.Optional[int]),
        "union_str": ("x", typing.Union[int, str]),
        "union_float": (1.5, typing.Union[int, float, str]),
        "enum": (Color.RED, Color),
        "dataclass": (p, Point),
        "list_dataclass": ([p], typing.List[Point]),
        "dict_dataclass": ({"p": p}, typing.Dict[str, Point]),
        "untyped_dict": ({"a": [1, {"b": None}], "c": "d"}, dict),
        "file": (FlyteFile(str(tmp / "f.csv")), FlyteFile),
        "csv_file": (FlyteFile(str(tmp / "f.csv")), FlyteFile[typing.TypeVar("csv")]),
        "directory": (FlyteDirectory(str(tmp / "d")), FlyteDirectory),
        "structured_dataset": (StructuredDataset(dataframe=pd.DataFrame({"x": [1, 2], "y": ["a", "b"]})), StructuredDataset),
        "bytes": (b"\x00\x01raw", bytes),
    }
    for name, (value, python_type) in values.items():
        try:
            lt = TypeEngine.to_literal_type(python_type)
            lit = TypeEngine.to_literal(ctx, value, python_type, lt).to_flyte_idl()
        except Exception as e:  # noqa: BLE001 - a type this flytekit cannot write is simply not a seed
            print(f"skipped {name}: {e}", file=sys.stderr)
            continue
        yield name, lit


def literals():
    for name, lit in flytekit_literals():
        write("literal", f"pb-{name}", b"\x00" + lit.SerializeToString())
        if lit.scalar.HasField("binary") and lit.scalar.binary.tag == "msgpack":
            write("literal", f"msgpack-{name}", b"\x01" + lit.scalar.binary.value)
    generic = struct_pb2.Struct()
    generic.update({"a": 1, "b": [True, None, "x"], "c": {"d": 2.5}})
    lit = literals_pb2.Literal(scalar=literals_pb2.Scalar(generic=generic))
    write("literal", "pb-generic_struct", b"\x00" + lit.SerializeToString())
    write("literal", "json-object", b"\x02" + json.dumps({"x": 1, "y": 2.5, "tags": ["a"], "color": "Green"}).encode())
    write("literal", "json-list", b"\x02" + json.dumps([1, 2, {"a": None}]).encode())


# ---------------------------------------------------------------------------------------------------------------
# gRPC request bodies (target `grpc_request`: RPC byte, then the framed body)
# ---------------------------------------------------------------------------------------------------------------
RPC = {"CreateTask": 0, "GetTask": 1, "DeleteTask": 2, "GetTaskMetrics": 3, "GetTaskLogs": 4,
       "ExecuteTaskSync": 5, "GetAgent": 6, "ListAgents": 7}


def custom(d: dict) -> struct_pb2.Struct:
    s = struct_pb2.Struct()
    s.update(d)
    return s


def double(x: int) -> int:
    """A plain Python task (flytekit refuses local functions, so it is module level)."""
    return 2 * x


def templates():
    from flytekit import task

    py = ti.serialize_flytekit_task(task(double))
    yield "python_task", py, ti.literal_map(x=ti.lit_int(21))
    echo = ti.task_template("echo", {"x": ti.simple_type("INTEGER")}, {"x": ti.simple_type("INTEGER")})
    yield "echo", echo, ti.literal_map(x=ti.lit_int(21))
    hook = ti.task_template("webhook", {}, {"info": ti.simple_type("STRUCT")})
    hook.custom.CopyFrom(custom({"url": "http://127.0.0.1:9/hook", "method": "POST", "body": {"a": 1},
                                 "headers": {"x": "y"}, "timeout_sec": 1}))
    yield "webhook", hook, ti.literal_map()
    snow = ti.task_template("snowflake", {"ds": ti.simple_type("STRING")}, {})
    snow.sql.statement = "insert into t select * from s where ds = '{{ .inputs.ds }}'"
    snow.custom.CopyFrom(custom({"user": "u", "account": "fuzz", "database": "d", "schema": "s", "warehouse": "w"}))
    yield "snowflake", snow, ti.literal_map(ds=ti.lit_str("2024-05-01"))
    bq = ti.task_template("bigquery_query_job_task", {}, {})
    bq.sql.statement = "SELECT 1"
    bq.custom.CopyFrom(custom({"ProjectID": "fuzz-project", "Location": "US"}))
    yield "bigquery", bq, ti.literal_map()
    ray = ti.task_template("ray", {}, {})
    ray.custom.CopyFrom(custom({"rayCluster": {"headGroupSpec": {}}, "runtimeEnv": "e30=", "shutdownAfterJobFinishes": True}))
    yield "ray", ray, ti.literal_map()


def grpc_requests():
    for name, template, inputs in templates():
        req = ti.create_request(template, inputs, ti.propeller_metadata(template, execution_name="fuzzseed0"))
        write("grpc_request", f"create-{name}", bytes([RPC["CreateTask"]]) + frame(req.SerializeToString()))
        header = admin.ExecuteTaskSyncRequest(header=admin.CreateRequestHeader(
            template=template, output_prefix=req.output_prefix, task_execution_metadata=req.task_execution_metadata))
        body = admin.ExecuteTaskSyncRequest(inputs=inputs)
        write("grpc_request", f"sync-{name}", bytes([RPC["ExecuteTaskSync"]])
              + frame(header.SerializeToString()) + frame(body.SerializeToString()))
    for task_type, meta in HANDLES:
        get = ti.get_request(task_type, meta, "s3://tern-interop/metadata/x/n0/data/0")
        write("grpc_request", f"get-{task_type}", bytes([RPC["GetTask"]]) + frame(get.SerializeToString()))
        delete = ti.delete_request(task_type, meta)
        write("grpc_request", f"delete-{task_type}", bytes([RPC["DeleteTask"]]) + frame(delete.SerializeToString()))
    metrics = admin.GetTaskMetricsRequest(task_type="echo", resource_meta=HANDLES[0][1], queries=["cpu"],
                                          task_category=admin.TaskCategory(name="echo"))
    write("grpc_request", "metrics-echo", bytes([RPC["GetTaskMetrics"]]) + frame(metrics.SerializeToString()))
    logs = admin.GetTaskLogsRequest(task_type="shell", resource_meta=HANDLES[1][1], lines=10, token="",
                                    task_category=admin.TaskCategory(name="shell"))
    write("grpc_request", "logs-shell", bytes([RPC["GetTaskLogs"]]) + frame(logs.SerializeToString()))
    write("grpc_request", "get-agent", bytes([RPC["GetAgent"]]) + frame(admin.GetAgentRequest(name="echo").SerializeToString()))
    write("grpc_request", "list-agents", bytes([RPC["ListAgents"]]) + frame(b""))


# ---------------------------------------------------------------------------------------------------------------
# handles (target `resource_meta`: call byte, task category name, NUL, then the handle)
# ---------------------------------------------------------------------------------------------------------------
def handle(**fields) -> bytes:
    return json.dumps({**fields, "v": 1}, separators=(",", ":")).encode()


HANDLES = [
    ("echo", handle(inputs=base64.b64encode(ti.literal_map(x=ti.lit_int(1)).SerializeToString()).decode())),
    ("shell", handle(key="k" * 64, output_prefix="s3://b/p/0")),
    ("sleep", handle(key="k" * 64, until_unix_ms=1)),
    ("duckdb", handle(job="j" * 64, output_prefix="/tmp/out")),
    ("dask", handle(job="a1" * 20)),
    ("gpu", handle(job="b2" * 20)),
    ("aws-batch", handle(job_id="4c3b6b2e-6f1b-4a8f-9b0a-1c2d3e4f5a6b", job_name="n", queue="q", outputs=True)),
    ("bigquery_query_job_task", handle(job_id="tern_abc", project="fuzz-project", location="US", results=True)),
    ("databricks", handle(run_id="123", instance="fuzz", auth="pat", outputs=False)),
    ("ray", handle(submission_id="tern-" + "c" * 32, outputs=True)),
    ("snowflake", handle(user="u", account="fuzz", database="d", schema="s", warehouse="w",
                         query_id="01b2c3d4-0000-0000-0000-000000000001", has_output=True, submitted=1714564800,
                         tag="tern:k")),
    ("lepton_endpoint_deployment_task", handle(op="deploy", name="tern-x", started_at=1, timeout_s=60)),
    ("spark", handle(mode="standalone", submission_id="driver-20240501000000-0000", app_name="tern-x")),
    ("spark", handle(mode="local", job="tern-x", pid=1)),
]


def resource_metas():
    for task_type, meta in HANDLES:
        for op in range(4):
            write("resource_meta", f"{task_type}-{len(meta)}-{op}", bytes([op]) + task_type.encode() + b"\0" + meta)
        write("resource_meta", f"{task_type}-empty-object", b"\0" + task_type.encode() + b'\0{"v":1}')


# ---------------------------------------------------------------------------------------------------------------
# --input text (target `input_text`: optional type expression line, then NAME=VALUE)
# ---------------------------------------------------------------------------------------------------------------
def input_texts():
    cases = {
        "int": "integer\nn=42", "float": "float\nx=1e-3", "bool": "boolean\nflag=TRUE", "str": "string\ns=héllo=x",
        "datetime": "datetime\nt=2024-05-01T12:00:00+02:00", "date": "datetime\nt=2024-05-01",
        "duration": "duration\nd=1h30m", "duration_s": "duration\nd=1.5", "list": "list<integer>\nxs=[1,2,3]",
        "map": "map<string, float>\nm={\"a\": 1.5}", "optional": "optional<integer>\nn=none",
        "union": "union<integer, string>\nu=abc", "struct": "struct\ns={\"a\": [1, null]}",
        "file": "file\nf=s3://bucket/key.csv", "dir": "directory\nd=/tmp/x", "df": "dataframe\ndf=/tmp/x.parquet",
        "enum": "enum<red, green>\nc=green", "nested": "list<map<string, list<optional<float>>>>\nv=[{\"a\":[1,null]}]",
        "bare": "n=7", "no_equals": "justtext",
    }
    for name, text in cases.items():
        write("input_text", name, text.encode())


if __name__ == "__main__":
    literals()
    grpc_requests()
    resource_metas()
    input_texts()
    print("seeds written under", CORPUS)
