"""`tern run` interrupted with Ctrl-C (it detaches and says how to resume or abort), `tern abort` (from another
process, while an execution runs or after its driver detached), and the execution lease seen from the CLI."""

from __future__ import annotations

import json
import signal
import subprocess
import time
from pathlib import Path

from tern_interop import child_env, explain, run_command

SLEEPY = """
name: sleepy
nodes:
  - id: nap
    task:
      type: sleep
      interface: {inputs: {duration: float}}
    inputs: {duration: 60.0}
"""


def start_run(tern_bin: Path, tmp_path: Path) -> subprocess.Popen:
    workflow = tmp_path / "sleepy.yaml"
    workflow.write_text(SLEEPY)
    return subprocess.Popen([str(tern_bin), "run", str(workflow), "--state-dir", str(tmp_path / "state")],
                            cwd=tmp_path, env=child_env(), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def wait_running(tmp_path: Path, tern_bin: Path, timeout: float = 30) -> dict:
    """The execution once its node's job runs, as `tern show --json` reports it."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        listed = run_command([tern_bin, "executions", "--state-dir", tmp_path / "state", "--json"], cwd=tmp_path)
        if listed.returncode == 0 and listed.stdout.strip() not in ("", "[]"):
            execution = json.loads(listed.stdout)[0]
            shown = show(tern_bin, tmp_path, execution["id"])
            if any(a["phase"] == "RUNNING" for a in shown["attempts"]):
                return shown
        time.sleep(0.2)
    raise AssertionError("the execution never had a running node")


def show(tern_bin: Path, tmp_path: Path, execution_id: str) -> dict:
    result = run_command([tern_bin, "show", execution_id, "--state-dir", tmp_path / "state", "--json"], cwd=tmp_path)
    assert result.returncode == 0, explain(result)
    return json.loads(result.stdout)


def test_ctrl_c_detaches_and_abort_then_deletes_the_running_job(tern_bin, tmp_path):
    run = start_run(tern_bin, tmp_path)
    try:
        execution_id = wait_running(tmp_path, tern_bin)["id"]
        run.send_signal(signal.SIGINT)
        out, err = run.communicate(timeout=30)
    finally:
        run.kill()
    assert run.returncode == 130, (out, err)
    assert f"tern recover {execution_id}" in err and f"tern abort {execution_id}" in err, err
    # Detached, not aborted: the execution still runs (nobody drives it) and its lease was released.
    assert show(tern_bin, tmp_path, execution_id)["phase"] == "RUNNING"

    aborted = run_command([tern_bin, "abort", execution_id, "--state-dir", tmp_path / "state"], cwd=tmp_path,
                          timeout=60)
    assert aborted.returncode == 1, explain(aborted)
    assert "ABORTED" in aborted.stderr, explain(aborted)
    shown = show(tern_bin, tmp_path, execution_id)
    assert shown["phase"] == "ABORTED", shown
    assert shown["error"]["code"] == "TERN-E313", shown
    assert [a["phase"] for a in shown["attempts"]] == ["ABORTED"], shown

    again = run_command([tern_bin, "abort", execution_id, "--state-dir", tmp_path / "state"], cwd=tmp_path)
    assert again.returncode == 2 and "TERN-E317" in again.stderr, explain(again)


def test_abort_from_another_process_stops_the_driving_run(tern_bin, tmp_path):
    run = start_run(tern_bin, tmp_path)
    try:
        execution_id = wait_running(tmp_path, tern_bin)["id"]
        # While it is driven, no other process may drive it.
        recover = run_command([tern_bin, "recover", execution_id, "--state-dir", tmp_path / "state"], cwd=tmp_path,
                              timeout=60)
        assert recover.returncode == 2, explain(recover)
        assert "TERN-E315" in recover.stderr and "lease" in recover.stderr, explain(recover)

        aborted = run_command([tern_bin, "abort", execution_id, "--state-dir", tmp_path / "state"], cwd=tmp_path,
                              timeout=60)
        assert aborted.returncode == 1 and "ABORTED" in aborted.stderr, explain(aborted)
        out, err = run.communicate(timeout=30)
    finally:
        run.kill()
    assert run.returncode == 1, (out, err)
    assert "ABORTED" in err, err
    assert show(tern_bin, tmp_path, execution_id)["phase"] == "ABORTED"


def test_recover_waits_for_a_gateway_that_is_down_and_attaches_to_the_job(tern_bin, tmp_path, logs_dir):
    """The driver dies (SIGKILL) and the gateway is down: `tern recover` waits for the gateway instead of failing,
    then attaches to the one sleep job (the sleep agent's durable records count one job)."""
    from tern_interop import ManagedProcess, free_port, wait_until_serving

    sleep_state = tmp_path / "sleep-state"
    config = tmp_path / "tern.toml"
    config.write_text(f'[agents.sleep]\nstate_dir = "{sleep_state}"\n')
    address = f"127.0.0.1:{free_port()}"

    def serve(n: int) -> ManagedProcess:
        proc = ManagedProcess("tern-serve", [tern_bin, "serve", "--addr", address, "--config", config],
                              logs_dir / f"recover-wait-{n}.log", env=child_env())
        wait_until_serving(proc, address, timeout=30)
        return proc

    gateway = serve(0)
    workflow = tmp_path / "nap.yaml"
    workflow.write_text(SLEEPY.replace("duration: 60.0", "duration: 3.0"))
    state = tmp_path / "state"
    run = subprocess.Popen([str(tern_bin), "run", str(workflow), "--state-dir", str(state), "--gateway", address],
                           cwd=tmp_path, env=child_env(), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    recover = None
    try:
        execution_id = wait_running(tmp_path, tern_bin)["id"]
        run.kill()
        run.wait(timeout=30)
        gateway.stop()
        recover = subprocess.Popen([str(tern_bin), "recover", execution_id, "--state-dir", str(state),
                                    "--gateway", address], cwd=tmp_path, env=child_env(),
                                   stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        time.sleep(2)
        assert recover.poll() is None, recover.communicate()
        gateway = serve(1)
        out, err = recover.communicate(timeout=90)
    finally:
        for p in (run, recover):
            if p is not None and p.poll() is None:
                p.kill()
        gateway.stop()
    assert recover.returncode == 0, (out, err)
    assert "waiting for unreachable agent servers" in err, err
    assert show(tern_bin, tmp_path, execution_id)["phase"] == "SUCCEEDED"
    jobs = list((sleep_state / "jobs").glob("*.json"))
    assert len(jobs) == 1, jobs
