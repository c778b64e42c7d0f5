"""Task output caching from the command line: `tern run` hits, `tern show` marks them, `tern cache list/evict`,
and cache serialize across two `tern run` processes sharing one state directory."""

from __future__ import annotations

import json
import subprocess
import time

from tern_interop import child_env, explain, run_command

CACHED = """
name: cached
inputs:
  x: integer
  label: {type: string, default: a}
nodes:
  - id: first
    task:
      type: echo
      cache: {version: "1", ignore_inputs: [label]}
      interface: {inputs: {x: integer, label: string}, outputs: {x: integer, label: string}}
    inputs: {x: "${inputs.x}", label: "${inputs.label}"}
outputs:
  x: ${first.x}
"""

SERIALIZED = """
name: serialized
inputs:
  pause: {type: float, default: 3}
nodes:
  - id: slow
    task:
      type: sleep
      cache: {version: "1", serialize: true}
      interface: {inputs: {duration: float}, outputs: {}}
    inputs: {duration: "${inputs.pause}"}
"""


def tern(tern_bin, tmp_path, *args, timeout=120):
    return run_command([tern_bin, *args], cwd=tmp_path, timeout=timeout)


def run(tern_bin, tmp_path, workflow, *inputs):
    result = tern(tern_bin, tmp_path, "run", workflow, "--state-dir", tmp_path / "state",
                  *[a for i in inputs for a in ("--input", i)])
    assert result.returncode == 0, explain(result)
    execution = result.stdout.split()[1]
    return execution, result


def attempts(tern_bin, tmp_path, execution):
    result = tern(tern_bin, tmp_path, "show", execution, "--state-dir", tmp_path / "state", "--json")
    assert result.returncode == 0, explain(result)
    return json.loads(result.stdout)["attempts"]


def test_run_hits_show_marks_and_cache_commands(tern_bin, tmp_path):
    workflow = tmp_path / "cached.yaml"
    workflow.write_text(CACHED)
    state = ["--state-dir", tmp_path / "state"]
    first, result = run(tern_bin, tmp_path, workflow, "x=4")
    assert "cache hit" not in result.stderr, explain(result)
    assert [a["cache_status"] for a in attempts(tern_bin, tmp_path, first)] == ["POPULATED"]

    second, result = run(tern_bin, tmp_path, workflow, "x=4", "label=other")
    assert "first [attempt 0] cache hit" in result.stderr and first in result.stderr, explain(result)
    assert "x = 4" in result.stdout, explain(result)
    [hit] = attempts(tern_bin, tmp_path, second)
    assert (hit["cache_status"], hit["phase"], hit["agent_endpoint"]) == ("HIT", "SUCCEEDED", "cache"), hit
    shown = tern(tern_bin, tmp_path, "show", second, *state)
    assert "cache HIT" in shown.stdout, explain(shown)

    run(tern_bin, tmp_path, workflow, "x=5")
    listed = tern(tern_bin, tmp_path, "cache", "list", *state, "--json")
    assert listed.returncode == 0, explain(listed)
    entries = json.loads(listed.stdout)
    assert len(entries) == 2 and {e["task_name"] for e in entries} == {"cached.first"}, entries
    assert {e["cache_version"] for e in entries} == {"1"} and first in {e["execution_id"] for e in entries}, entries
    assert hit["cache_key"] in {e["key"] for e in entries}
    table = tern(tern_bin, tmp_path, "cache", "list", *state)
    assert table.returncode == 0 and hit["cache_key"][:12] in table.stdout, explain(table)

    unknown = tern(tern_bin, tmp_path, "cache", "evict", "deadbeefdeadbeef", *state)
    assert unknown.returncode == 2 and "TERN-E320" in unknown.stderr, explain(unknown)
    nothing = tern(tern_bin, tmp_path, "cache", "evict", *state)
    assert nothing.returncode == 2, explain(nothing)
    one = tern(tern_bin, tmp_path, "cache", "evict", hit["cache_key"][:10], *state)
    assert one.returncode == 0 and "evicted 1 cache entry" in one.stdout, explain(one)
    _, result = run(tern_bin, tmp_path, workflow, "x=4")
    assert "cache hit" not in result.stderr, "evicted: a miss\n" + explain(result)
    task = tern(tern_bin, tmp_path, "cache", "evict", "--task", "cached.first", *state)
    assert task.returncode == 0 and "evicted 2 cache entries" in task.stdout, explain(task)
    empty = tern(tern_bin, tmp_path, "cache", "evict", "--all", *state)
    assert empty.returncode == 0 and "evicted 0 cache entries" in empty.stdout, explain(empty)


def test_cache_serialize_across_processes(tern_bin, tmp_path):
    """Two `tern run` processes on one state database: the sleep task runs once, the other waits and hits."""
    workflow = tmp_path / "serialized.yaml"
    workflow.write_text(SERIALIZED)
    argv = [str(tern_bin), "run", str(workflow), "--state-dir", str(tmp_path / "state")]
    first = subprocess.Popen(argv, cwd=tmp_path, env=child_env(), stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                             text=True, start_new_session=True)
    try:
        # The first holds the reservation once its node is running.
        deadline = time.monotonic() + 60
        line = ""
        while "running" not in line and time.monotonic() < deadline:
            line = first.stderr.readline()
            if not line and first.poll() is not None:
                break
        assert "slow [attempt 0] running" in line, line
        second = run_command(argv, cwd=tmp_path, timeout=120)
        out, err = first.communicate(timeout=120)
    finally:
        if first.poll() is None:
            first.kill()
    assert first.returncode == 0, err
    assert second.returncode == 0, explain(second)
    assert "waiting for" in second.stderr and "cache hit" in second.stderr, explain(second)
    execution = second.stdout.split()[1]
    [hit] = attempts(tern_bin, tmp_path, execution)
    assert hit["cache_status"] == "HIT", hit
