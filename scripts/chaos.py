#!/usr/bin/env python3
"""Chaos harness: at most one external job per attempt, under engine crashes and gateway restarts.

Each trial starts `tern serve` (own state directory, a loopback port) and runs a workflow of async tasks through it
with `tern run --gateway`, while faults are injected at random moments:

  * the engine (`tern run`, then each `tern recover`) is killed with SIGKILL one to three times; after each kill the
    execution is resumed with `tern recover ID` until it ends;
  * the gateway is restarted mid-run zero to two times (SIGTERM or SIGKILL, then started again on the same port
    after an outage of up to --max-outage seconds, default 3).

Per trial it checks: the execution completes (SUCCEEDED per `tern show --json`), 0 duplicate submissions (per node
at most one job was started at the backend), and 0 lost outputs (the workflow outputs are present and equal to the
expected values). It prints a table and exits 1 if any trial was unclean.

Backends (`--backend`):

  sleep  the sleep agent (async; jobs of 0.2-1 s) and echo nodes downstream whose values are the workflow outputs.
         Submissions are counted from the sleep agent's durable records (`<state_dir>/jobs/*.json`, one per job
         started, never one per attach; see agents/sleep/src/records.rs).
  ray    examples/ray/ray.yaml with its Ray node routed to `tern serve` (`--connector ray=...`) and a real Ray head
         started from the Ray virtualenv ($TERN_RAY_PYTHON, default ~/.cache/tern/venv-ray/bin/python); jobs are
         counted at the head (GET /api/jobs/). Slower (a job is a pyflyte-execute process): use fewer trials.

Usage (from the repository root, with the project virtualenv, which has flyteidl):

  cargo build --release --bin tern
  ~/.cache/tern/venv/bin/python scripts/chaos.py --trials 100 --tern target/release/tern
  ~/.cache/tern/venv/bin/python scripts/chaos.py --backend ray --trials 10 --tern target/release/tern

Options: --max-outage, --kill-window, --seed (the fault schedule is reproducible per seed and trial), --workdir
(kept; default a temp dir removed after a clean run), --trial-timeout, --json (one JSON object per trial on stdout
after the table).
"""

from __future__ import annotations

import argparse
import json
import os
import random
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path
from typing import Dict, List, Optional

REPO = Path(__file__).resolve().parent.parent


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def port_open(port: int) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=0.2):
            return True
    except OSError:
        return False


class Proc:
    """A child in its own process group, with its output in a file."""

    def __init__(self, argv: List[str], log: Path, cwd: Path, env: Optional[Dict[str, str]] = None):
        self.argv = [str(a) for a in argv]
        self.log = log
        self.out = open(log, "ab")
        self.out.write(("\n$ " + " ".join(self.argv) + "\n").encode())
        self.out.flush()
        self.stdout_path = log.with_suffix(f".{time.monotonic_ns()}.stdout")
        self.stdout = open(self.stdout_path, "wb")
        self.p = subprocess.Popen(self.argv, cwd=cwd, stdout=self.stdout, stderr=self.out, env=env,
                                  start_new_session=True)
        self.started = time.monotonic()
        self.killed_by_us = False

    def alive(self) -> bool:
        return self.p.poll() is None

    def kill(self, sig: int = signal.SIGKILL) -> None:
        self.killed_by_us = True
        try:
            os.killpg(self.p.pid, sig)
        except ProcessLookupError:
            pass

    def wait(self, timeout: float) -> Optional[int]:
        try:
            return self.p.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            return None

    def stdout_text(self) -> str:
        self.stdout.flush()
        return self.stdout_path.read_text(errors="replace")

    def close(self) -> None:
        if self.alive():
            self.kill()
            self.wait(10)
        self.out.close()
        self.stdout.close()


# ---------------------------------------------------------------------------------------------------------------
# Backends: the workflow, the gateway config, the expected outputs and the submission count.


@dataclass
class Trial:
    index: int
    rng: random.Random
    dir: Path
    port: int = 0
    execution: Optional[str] = None
    engine_kills: int = 0
    gateway_restarts: List[str] = field(default_factory=list)
    phase: str = "?"
    outputs: Optional[dict] = None
    expected: Optional[dict] = None
    submissions: Dict[str, int] = field(default_factory=dict)
    overlaps: int = 0
    # Jobs the engine gave up on without cancelling them, while they still ran (the attempt did not succeed).
    orphans: int = 0
    detail: dict = field(default_factory=dict)
    engine_attempts: Dict[str, int] = field(default_factory=dict)
    notes: List[str] = field(default_factory=list)
    seconds: float = 0.0

    @property
    def duplicates(self) -> int:
        return sum(max(0, n - 1) for n in self.submissions.values())

    @property
    def lost_outputs(self) -> bool:
        return self.outputs != self.expected

    @property
    def clean(self) -> bool:
        return self.phase == "SUCCEEDED" and self.duplicates == 0 and self.orphans == 0 and not self.lost_outputs


class SleepBackend:
    name = "sleep"
    nodes_with_jobs = ["a", "b1", "b2", "b3", "c", "d"]

    def prepare(self, trial: Trial) -> None:
        rng = trial.rng
        d = {n: round(rng.uniform(0.2, 1.0), 2) for n in self.nodes_with_jobs}
        self.seed = rng.randrange(1, 10**9)
        self.label = f"trial-{trial.index}-{rng.randrange(10**6)}"
        trial.expected = {"seed": self.seed, "label": self.label, "again": self.seed}
        sleep = lambda nid, dur, deps: {  # noqa: E731
            "id": nid, "depends_on": deps,
            "task": {"type": "sleep", "retries": 3, "interface": {"inputs": {"duration": "float"}, "outputs": {}}},
            "inputs": {"duration": dur},
        }
        echo = lambda nid, inputs, deps: {  # noqa: E731
            "id": nid, "depends_on": deps,
            "task": {"type": "echo", "retries": 3, "interface": {
                "inputs": {k: t for k, (t, _) in inputs.items()}, "outputs": {k: t for k, (t, _) in inputs.items()}}},
            "inputs": {k: v for k, (_, v) in inputs.items()},
        }
        # a -> (b1, b2, b3 in parallel); b1, b2 -> c; b3 -> e1 (echo); c, e1 -> e2 (echo) -> d -> e3 (echo)
        nodes = [
            sleep("a", d["a"], []),
            sleep("b1", d["b1"], ["a"]), sleep("b2", d["b2"], ["a"]), sleep("b3", d["b3"], ["a"]),
            sleep("c", d["c"], ["b1", "b2"]),
            echo("e1", {"x": ("integer", "${inputs.seed}"), "s": ("string", "${inputs.label}")}, ["b3"]),
            echo("e2", {"x": ("integer", "${e1.x}")}, ["c"]),
            sleep("d", d["d"], ["e2"]),
            echo("e3", {"y": ("integer", "${e2.x}")}, ["d"]),
        ]
        workflow = {
            "name": "chaos-sleep",
            "inputs": {"seed": "integer", "label": "string"},
            "nodes": nodes,
            "outputs": {"seed": "${e1.x}", "label": "${e1.s}", "again": "${e3.y}"},
        }
        # JSON is YAML.
        (trial.dir / "workflow.yaml").write_text(json.dumps(workflow, indent=1))
        (trial.dir / "tern.toml").write_text(
            f'[server]\naddr = "127.0.0.1:{trial.port}"\n[data_store]\nroot = "{trial.dir / "gateway-data"}"\n'
            f'[agents.echo]\n[agents.sleep]\nstate_dir = "{trial.dir / "sleep-state"}"\n')

    def run_args(self, trial: Trial) -> List[str]:
        return ["run", trial.dir / "workflow.yaml", "--gateway", f"127.0.0.1:{trial.port}",
                "--input", f"seed={self.seed}", "--input", f"label={self.label}"]

    def target_args(self, trial: Trial) -> List[str]:
        return ["--gateway", f"127.0.0.1:{trial.port}"]

    def count(self, trial: Trial) -> None:
        jobs = trial.dir / "sleep-state" / "jobs"
        records = []
        for f in sorted(jobs.glob("*.json")) if jobs.is_dir() else []:
            r = json.loads(f.read_text())
            if r.get("execution") == trial.execution:
                cancelled = f.with_suffix(".cancelled")
                r["cancelled_unix_ms"] = int(cancelled.stat().st_mtime * 1000) if cancelled.exists() else None
                records.append(r)
        ended = {(a["node_id"], a["attempt"]): a for a in trial.detail.get("attempts", [])}
        for r in records:
            a = ended.get((r["node"], r["attempt"]))
            if a is None or a["phase"] == "SUCCEEDED" or r["cancelled_unix_ms"] is not None:
                continue
            gave_up = unix_ms(a.get("finished_at") or a.get("updated_at"))
            if gave_up is not None and r["until_unix_ms"] > gave_up:
                trial.orphans += 1
                trial.notes.append(f"{r['node']} attempt {r['attempt']} {a['phase']} while its job ran on")
        by_node: Dict[str, list] = {}
        for r in records:
            by_node.setdefault(r["node"], []).append(r)
        trial.submissions = {n: len(by_node.get(n, [])) for n in self.nodes_with_jobs}
        # Two jobs of one node alive at once: the earlier one neither ended nor was cancelled when the next started.
        for rs in by_node.values():
            rs.sort(key=lambda r: r["created_unix_ms"])
            for prev, nxt in zip(rs, rs[1:]):
                ended = min(prev["until_unix_ms"], prev["cancelled_unix_ms"] or prev["until_unix_ms"])
                if ended > nxt["created_unix_ms"]:
                    trial.overlaps += 1

    def stop(self) -> None:
        pass


class RayBackend:
    name = "ray"

    def __init__(self, python: Path, workdir: Path):
        self.python = python
        bin_dir = python.parent
        self.tmp = Path(tempfile.mkdtemp(prefix="tern-chaos-ray-", dir="/tmp"))
        (self.tmp / "cwd").mkdir()
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        env = dict(os.environ)
        env.update({"PATH": f"{bin_dir}{os.pathsep}{env.get('PATH', '')}", "PYTHONPATH": str(REPO / "examples" / "ray"),
                    "RAY_USAGE_STATS_ENABLED": "0", "RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER": "0"})
        env.pop("RAY_ADDRESS", None)
        self.gcs_port = free_port()
        ports = ["--port", str(self.gcs_port)]
        for flag in ("--ray-client-server-port", "--node-manager-port", "--object-manager-port",
                     "--dashboard-agent-listen-port", "--dashboard-agent-grpc-port", "--runtime-env-agent-port",
                     "--metrics-export-port"):
            ports += [flag, str(free_port())]
        argv = [bin_dir / "ray", "start", "--head", "--block", "--node-ip-address", "127.0.0.1", "--num-cpus", "2",
                "--include-dashboard", "true", "--dashboard-host", "127.0.0.1", "--dashboard-port", str(self.port),
                "--disable-usage-stats", "--temp-dir", self.tmp / "r", *ports]
        self.head = Proc(argv, workdir / "ray-head.log", cwd=self.tmp / "cwd", env=env)
        deadline = time.monotonic() + 120
        while True:
            if not self.head.alive():
                raise SystemExit(f"ray start exited; see {workdir / 'ray-head.log'}")
            try:
                self.jobs()
                break
            except OSError:
                if time.monotonic() > deadline:
                    raise SystemExit("the Ray head did not come up in 120 s")
                time.sleep(0.5)

    def jobs(self) -> list:
        req = urllib.request.Request(self.url + "/api/jobs/")
        with urllib.request.build_opener(urllib.request.ProxyHandler({})).open(req, timeout=10) as r:
            return json.loads(r.read() or b"[]")

    def prepare(self, trial: Trial) -> None:
        self.n = trial.rng.randrange(3, 30)
        total = sum(i * i for i in range(self.n))
        trial.expected = {"total": total, "line": f"sum of squares below {self.n}: {total}"}
        self.before = {j["submission_id"] for j in self.jobs()}
        (trial.dir / "tern.toml").write_text(
            f'[server]\naddr = "127.0.0.1:{trial.port}"\n[data_store]\nroot = "{trial.dir / "gateway-data"}"\n'
            f'[agents.ray]\naddress = "{self.url}"\n')

    def run_args(self, trial: Trial) -> List[str]:
        return ["run", REPO / "examples" / "ray" / "ray.yaml", *self.target_args(trial), "--input", f"n={self.n}"]

    def target_args(self, trial: Trial) -> List[str]:
        # Only the Ray node goes through the gateway; the DuckDB node runs in the engine's process.
        return ["--connector", f"ray=127.0.0.1:{trial.port}"]

    def count(self, trial: Trial) -> None:
        # Jobs of this trial: new at the head since it began (trials run one after another).
        new = [j for j in self.jobs() if j["submission_id"] not in self.before]
        trial.submissions = {"squares": len(new)}
        new.sort(key=lambda j: j.get("start_time") or 0)
        for prev, nxt in zip(new, new[1:]):
            if (prev.get("end_time") or 1 << 62) > (nxt.get("start_time") or 0) and prev.get("status") != "STOPPED":
                trial.overlaps += 1
        # No attempt succeeded, yet a job was not stopped and ran past the moment the engine gave up: abandoned.
        attempts = [a for a in trial.detail.get("attempts", []) if a["node_id"] == "squares"]
        if attempts and not any(a["phase"] == "SUCCEEDED" for a in attempts):
            gave_up = max(unix_ms(a.get("finished_at") or a.get("updated_at")) or 0 for a in attempts)
            for j in new:
                if j.get("status") != "STOPPED" and (j.get("end_time") or 1 << 62) > gave_up:
                    trial.orphans += 1
                    trial.notes.append(f"ray job {j['submission_id']} {j.get('status')} after the engine gave up")
        if len(new) > 1:
            trial.notes.append("ray jobs: " + ", ".join(f"{j['submission_id']}={j['status']}" for j in new))

    def stop(self) -> None:
        self.head.kill(signal.SIGTERM)
        if self.head.wait(3) is None:
            self.head.kill(signal.SIGKILL)
        marks = [f"{self.tmp}/".encode(), f"RAY_ADDRESS=127.0.0.1:{self.gcs_port}\0".encode()]
        for _ in range(3):
            ours = []
            for proc in Path("/proc").iterdir():
                if not proc.name.isdigit() or int(proc.name) == os.getpid():
                    continue
                try:
                    text = (proc / "cmdline").read_bytes() + b"\0" + (proc / "environ").read_bytes()
                except OSError:
                    continue
                if any(m in text for m in marks):
                    ours.append(int(proc.name))
            if not ours:
                break
            for pid in ours:
                try:
                    os.kill(pid, signal.SIGKILL)
                except OSError:
                    pass
            time.sleep(0.2)
        self.head.close()
        shutil.rmtree(self.tmp, ignore_errors=True)


# ---------------------------------------------------------------------------------------------------------------
# One trial.


class Runner:
    def __init__(self, tern: Path, backend, args):
        self.tern = tern
        self.backend = backend
        self.args = args

    def tern_cmd(self, trial: Trial, *argv) -> List[str]:
        return [self.tern, *argv]

    def start_gateway(self, trial: Trial) -> Proc:
        g = Proc([self.tern, "serve", "--config", trial.dir / "tern.toml"], trial.dir / "serve.log", cwd=trial.dir,
                 env={**os.environ, "RUST_LOG": "info", "NO_COLOR": "1"})
        deadline = time.monotonic() + 30
        while not port_open(trial.port):
            if not g.alive():
                raise RuntimeError(f"tern serve exited; see {trial.dir / 'serve.log'}")
            if time.monotonic() > deadline:
                raise RuntimeError("tern serve did not listen in 30 s")
            time.sleep(0.02)
        return g

    def state(self, trial: Trial) -> List[str]:
        return ["--state-dir", trial.dir / "engine"]

    def find_execution(self, trial: Trial) -> Optional[str]:
        r = subprocess.run([str(self.tern), "executions", "--json", *map(str, self.state(trial))], cwd=trial.dir,
                           capture_output=True, text=True, timeout=60)
        if r.returncode != 0:
            trial.notes.append(f"tern executions: {r.stderr.strip()[:200]}")
            return None
        ids = [x["id"] for x in json.loads(r.stdout or "[]")]
        return ids[0] if ids else None

    def show(self, trial: Trial) -> Optional[dict]:
        r = subprocess.run([str(self.tern), "show", trial.execution, "--json", *map(str, self.state(trial))],
                           cwd=trial.dir, capture_output=True, text=True, timeout=60)
        return json.loads(r.stdout) if r.returncode == 0 and r.stdout.strip() else None

    def start_engine(self, trial: Trial) -> Proc:
        if trial.execution is None:
            trial.execution = self.find_execution(trial)
        if trial.execution is None:
            argv = [self.tern, *self.backend.run_args(trial), *self.state(trial), "--json"]
        else:
            argv = [self.tern, "recover", trial.execution, *self.backend.target_args(trial), *self.state(trial),
                    "--json"]
        return Proc(argv, trial.dir / "engine.log", cwd=trial.dir, env={**os.environ, "NO_COLOR": "1"})

    def run(self, trial: Trial) -> None:
        rng = trial.rng
        trial.port = free_port()
        self.backend.prepare(trial)
        started = time.monotonic()
        kills_left = rng.choice([1, 1, 2, 3])
        window = self.args.kill_window
        restarts = sorted(rng.uniform(0.3, window * 2) for _ in range(rng.choice([0, 1, 1, 2])))
        gateway = self.start_gateway(trial)
        engine = self.start_engine(trial)
        kill_at = engine.started + rng.uniform(0.1, window)
        final: Optional[dict] = None
        failures = 0
        first_failure: Optional[float] = None
        try:
            while True:
                now = time.monotonic()
                if now - started > self.args.trial_timeout:
                    trial.notes.append(f"timed out after {self.args.trial_timeout:.0f} s")
                    break
                if restarts and now - started >= restarts[0]:
                    restarts.pop(0)
                    how = rng.choice(["SIGTERM", "SIGKILL"])
                    gateway.kill(getattr(signal, how))
                    gateway.wait(15)
                    gateway.close()
                    gap = rng.uniform(0.05, self.args.max_outage)
                    time.sleep(gap)
                    gateway = self.start_gateway(trial)
                    trial.gateway_restarts.append(f"{how}+{gap:.1f}s")
                    continue
                if engine.alive():
                    if kills_left and now >= kill_at:
                        engine.kill(signal.SIGKILL)
                        engine.wait(10)
                        kills_left -= 1
                        trial.engine_kills += 1
                    else:
                        time.sleep(0.01)
                    continue
                rc = engine.p.returncode
                out = engine.stdout_text().strip()
                engine.close()
                if engine.killed_by_us:
                    failures, first_failure = 0, None
                    engine = self.start_engine(trial)
                    # Later kills come sooner, so that several land before the execution ends.
                    kill_at = engine.started + rng.uniform(0.1, window / 2)
                    continue
                if rc == 0 and out:
                    final = json.loads(out.splitlines()[-1])
                    trial.execution = final.get("execution_id", trial.execution)
                    break
                # The command failed on its own: a failed execution ends the trial; anything else (an engine that
                # could not start, a recover that found the execution already finished) is looked at below.
                err = (trial.dir / "engine.log").read_text(errors="replace").strip().splitlines()[-1:]
                if out:
                    final = json.loads(out.splitlines()[-1])
                    trial.notes.append(f"exit {rc}: {json.dumps(final.get('error'))[:300]}")
                    break
                if any("TERN-E309" in e for e in err):
                    break
                # E.g. the gateway is down (E211 from the route check), or another process's lease has not expired
                # yet: try again for up to --give-up seconds of consecutive failures.
                failures += 1
                first_failure = first_failure or now
                note = f"exit {rc}: {err[0][:300] if err else ''}"
                if note not in trial.notes:
                    trial.notes.append(note)
                if now - first_failure > self.args.give_up:
                    trial.notes.append(f"gave up after {failures} failed engine starts")
                    break
                time.sleep(min(0.25 * failures, 2.0))
                engine = self.start_engine(trial)
                kill_at = engine.started + rng.uniform(0.1, window)
        finally:
            engine.close()
            gateway.close()
        trial.seconds = time.monotonic() - started
        if trial.execution is None:
            trial.execution = self.find_execution(trial)
        if trial.execution is None:
            trial.notes.append("no execution recorded")
            return
        detail = self.show(trial) or {}
        trial.detail = detail
        trial.phase = detail.get("phase", "?")
        for a in detail.get("attempts", []):
            trial.engine_attempts[a["node_id"]] = trial.engine_attempts.get(a["node_id"], 0) + 1
        if final is not None and final.get("phase") == "SUCCEEDED":
            trial.outputs = final.get("outputs")
        elif detail.get("outputs_uri"):
            trial.outputs = read_outputs(detail["outputs_uri"], trial.dir / "engine" / "data")
        if detail.get("error"):
            trial.notes.append(f"failed node {detail.get('failed_node')}: {json.dumps(detail['error'])[:300]}")
        self.backend.count(trial)


def why(trial: Trial, node: str) -> str:
    """A node's attempts as the engine recorded them: `0 RETRYABLE_FAILED(GetTask TERN-A008) 1 SUCCEEDED`."""
    parts = []
    for a in trial.detail.get("attempts", []):
        if a["node_id"] == node:
            e = a.get("error") or {}
            rpc = (e.get("message") or "").split(" ", 1)[0]
            parts.append(f"{a['attempt']} {a['phase']}" + (f"({rpc} {e.get('code')})" if e else ""))
    return " ".join(parts)


def causes(trial: Trial) -> List[str]:
    """Why a trial is unclean, in words that add up across trials."""
    out = []
    if trial.phase != "SUCCEEDED":
        e = trial.detail.get("error") or {}
        m = re.search(r"failed: (\w+) at ", e.get("message") or "")
        out.append(f"execution {trial.phase}: {m.group(1) if m else (e.get('message') or '?')[:60]} {e.get('code', '')}")
    for node, n in trial.submissions.items():
        if n > 1:
            failed = [a for a in trial.detail.get("attempts", []) if a["node_id"] == node and a.get("error")]
            rpc = (failed[0]["error"].get("message") or "").split(" ", 1)[0] if failed else "?"
            out.append(f"a second job after an attempt failed on {rpc}")
    if trial.orphans:
        out.append("a job abandoned without DeleteTask")
    if trial.phase == "SUCCEEDED" and trial.lost_outputs:
        out.append("outputs lost or wrong")
    return out


def unix_ms(timestamp: Optional[str]) -> Optional[int]:
    if not timestamp:
        return None
    from datetime import datetime

    return int(datetime.fromisoformat(timestamp.replace("Z", "+00:00")).timestamp() * 1000)


def read_outputs(uri: str, data_root: Path) -> Optional[dict]:
    """The workflow outputs LiteralMap at `uri`, as plain values (flyteidl from the project virtualenv)."""
    from flyteidl.core import literals_pb2

    path = Path(uri[len("file://"):]) if uri.startswith("file://") else Path(uri)
    if not path.is_absolute():
        path = data_root / path
    m = literals_pb2.LiteralMap()
    m.ParseFromString(path.read_bytes())
    out = {}
    for k, lit in m.literals.items():
        p = lit.scalar.primitive
        out[k] = getattr(p, p.WhichOneof("value")) if p.WhichOneof("value") else None
    return out


# ---------------------------------------------------------------------------------------------------------------


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--trials", type=int, default=10)
    ap.add_argument("--backend", choices=["sleep", "ray"], default="sleep")
    ap.add_argument("--tern", type=Path, default=Path(os.environ.get("TERN_BIN", REPO / "target" / "release" / "tern")))
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--workdir", type=Path)
    ap.add_argument("--trial-timeout", type=float, default=180.0)
    ap.add_argument("--kill-window", type=float, default=3.0,
                    help="an engine process is killed at a uniform moment in (0.1, this) seconds after its start")
    ap.add_argument("--give-up", type=float, default=60.0,
                    help="stop a trial when engine starts keep failing on their own for this many seconds")
    ap.add_argument("--max-outage", type=float, default=3.0,
                    help="a restarted gateway is down for a uniform time in (0.05, this) seconds before it starts again")
    ap.add_argument("--ray-python", type=Path,
                    default=Path(os.environ.get("TERN_RAY_PYTHON", Path.home() / ".cache/tern/venv-ray/bin/python")))
    ap.add_argument("--json", action="store_true")
    args = ap.parse_args()
    tern = args.tern.resolve()
    if not tern.is_file():
        print(f"error: no tern binary at {tern} (cargo build --release --bin tern, or --tern PATH)", file=sys.stderr)
        return 2
    workdir = (args.workdir or Path(tempfile.mkdtemp(prefix="tern-chaos-"))).resolve()
    workdir.mkdir(parents=True, exist_ok=True)
    backend = SleepBackend() if args.backend == "sleep" else RayBackend(args.ray_python, workdir)
    runner = Runner(tern, backend, args)
    trials: List[Trial] = []
    print(f"chaos: {args.trials} trials, backend {args.backend}, seed {args.seed}, work dir {workdir}", flush=True)
    header = f"{'#':>4} {'result':<7} {'phase':<10} {'kills':>5} {'gw restarts':<22} {'subm':>4} {'dup':>3} " \
             f"{'ovl':>3} {'orph':>4} {'lost':<4} {'secs':>6}  notes"
    print(header, flush=True)
    try:
        for i in range(args.trials):
            d = workdir / f"trial-{i:03d}"
            d.mkdir(exist_ok=True)
            t = Trial(index=i, rng=random.Random(f"{args.seed}/{i}"), dir=d)
            try:
                runner.run(t)
            except Exception as e:  # a harness failure is an unclean trial, with the reason
                t.notes.append(f"harness: {type(e).__name__}: {e}")
            trials.append(t)
            extra = {n: c for n, c in t.submissions.items() if c != 1}
            notes = "; ".join(t.notes + [f"{n}: {c} jobs, attempts {why(t, n)}" for n, c in extra.items()])
            print(f"{i:>4} {'clean' if t.clean else 'UNCLEAN':<7} {t.phase:<10} {t.engine_kills:>5} "
                  f"{','.join(t.gateway_restarts) or '-':<22} {sum(t.submissions.values()):>4} {t.duplicates:>3} "
                  f"{t.overlaps:>3} {t.orphans:>4} {'yes' if t.lost_outputs else 'no':<4} {t.seconds:>6.1f}  {notes}", flush=True)
    finally:
        backend.stop()
    clean = sum(t.clean for t in trials)
    completed = sum(t.phase == "SUCCEEDED" for t in trials)
    dups = sum(t.duplicates for t in trials)
    overlaps = sum(t.overlaps for t in trials)
    lost = sum(t.lost_outputs for t in trials)
    orphans = sum(t.orphans for t in trials)
    kills = sum(t.engine_kills for t in trials)
    restarts = sum(len(t.gateway_restarts) for t in trials)
    print(f"\nsummary: {clean}/{len(trials)} clean; {completed} completed; {dups} duplicate submissions "
          f"({overlaps} overlapping a live job) in {sum(t.duplicates > 0 for t in trials)} trials; "
          f"{orphans} jobs abandoned uncancelled; {lost} trials with lost or wrong outputs; {kills} engine SIGKILLs, {restarts} gateway restarts")
    tally: Dict[str, int] = {}
    for t in trials:
        for c in dict.fromkeys(causes(t)):
            tally[c] = tally.get(c, 0) + 1
    for c, n in sorted(tally.items(), key=lambda kv: -kv[1]):
        print(f"  {n:>3} trials: {c}")
    if args.json:
        for t in trials:
            print(json.dumps({"trial": t.index, "clean": t.clean, "phase": t.phase, "execution": t.execution,
                              "engine_kills": t.engine_kills, "gateway_restarts": t.gateway_restarts,
                              "submissions": t.submissions, "engine_attempts": t.engine_attempts,
                              "duplicates": t.duplicates, "overlaps": t.overlaps, "orphans": t.orphans, "outputs": t.outputs,
                              "expected": t.expected, "notes": t.notes, "seconds": round(t.seconds, 2)}))
    if clean == len(trials) and not args.workdir:
        shutil.rmtree(workdir, ignore_errors=True)
    else:
        print(f"logs: {workdir}")
    return 0 if clean == len(trials) else 1


if __name__ == "__main__":
    sys.exit(main())
