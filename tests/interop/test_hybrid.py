"""examples/hybrid as its README runs it: one workflow whose DuckDB node runs in the engine, whose Ray node is routed
to a `tern serve` next to a real Ray head, and whose AWS Batch node is routed to a `tern serve` in "the cloud" (moto),
by the routes of examples/hybrid/tern.toml (the example's files, with this test's ports).

Peers: the Ray head of test_ray.py ($TERN_RAY_PYTHON) and the moto Batch peer of test_batch.py.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tern_interop import REPO, ManagedProcess, child_env, explain, free_port, run_command, wait_until_serving
from test_batch import QUEUE, Moto
from test_ray import RayHead, ray_python

EXAMPLE = REPO / "examples" / "hybrid"


@pytest.fixture(scope="module")
def ray_head(logs_dir):
    head = RayHead(ray_python(), logs_dir)
    yield head
    head.stop()


@pytest.fixture(scope="module")
def moto_peer(logs_dir, tmp_path_factory):
    m = Moto(logs_dir, tmp_path_factory.mktemp("moto-hybrid"))
    yield m
    m.stop()


def example_config(name: str, ports: dict, workdir: Path) -> Path:
    """The example's config file with this test's ports in place of the README's."""
    text = (EXAMPLE / name).read_text()
    for readme_port, port in ports.items():
        text = text.replace(f"127.0.0.1:{readme_port}", f"127.0.0.1:{port}")
    path = workdir / name
    path.write_text(text)
    return path


def test_hybrid_workflow_runs_each_node_where_its_route_sends_it(tern_bin, logs_dir, tmp_path, ray_head, moto_peer):
    ports = {8101: free_port(), 8102: free_port()}
    aws_env = {"AWS_ENDPOINT_URL": moto_peer.url, "AWS_REGION": "us-east-1", "AWS_ACCESS_KEY_ID": "test",
               "AWS_SECRET_ACCESS_KEY": "test", "TERN_AGENTS__BATCH__JOB_QUEUE": QUEUE}
    gateways = []
    try:
        # The three processes start in one directory: they share the data store `.tern/data` (README).
        for name, port, env in [("ray-gateway.toml", ports[8101], {"RAY_ADDRESS": ray_head.url}),
                                ("aws-gateway.toml", ports[8102], aws_env)]:
            config = example_config(name, ports, tmp_path)
            argv = [tern_bin, "serve", "--config", config, "--addr", f"127.0.0.1:{port}"]
            proc = ManagedProcess(name, argv, logs_dir / f"hybrid-{name}-{port}.log", cwd=tmp_path, env=child_env(env))
            gateways.append(proc)
            wait_until_serving(proc, f"127.0.0.1:{port}", timeout=30)

        ray_jobs, batch_jobs = len(ray_head.jobs()), len(moto_peer.jobs())
        engine_config = example_config("tern.toml", ports, tmp_path)
        result = run_command([tern_bin, "run", EXAMPLE / "hybrid.yaml", "--config", engine_config,
                              "--state-dir", tmp_path / "state", "--input", "n=10", "--input", "shards=4", "--json"],
                             cwd=tmp_path, timeout=300, env=child_env())
        assert result.returncode == 0, explain(result) + "".join(g.log_text() for g in gateways)
        summary = json.loads(result.stdout)
        assert summary["phase"] == "SUCCEEDED", summary
        assert summary["outputs"] == {
            "total": 285,
            "line": "sum of squares below 10: 285 (Ray); 4 shards reindexed (AWS Batch); reported by DuckDB",
        }, summary
        # Each remote node ran where its route sent it, once (the engine's own config serves only duckdb).
        assert len(ray_head.jobs()) == ray_jobs + 1
        assert len(moto_peer.jobs()) == batch_jobs + 1
    finally:
        for g in gateways:
            g.stop()
