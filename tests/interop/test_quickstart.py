"""The README's quickstart (examples/quickstart.yaml) runs offline, end to end, with the embedded agents."""

from __future__ import annotations

import json
from pathlib import Path
from urllib.parse import urlparse

from tern_interop import REPO, explain, run_command

QUICKSTART = REPO / "examples" / "quickstart.yaml"


def run_quickstart(tern_bin, tmp_path, *inputs):
    args = [tern_bin, "run", QUICKSTART, "--state-dir", tmp_path / "state", "--json"]
    for i in inputs:
        args += ["--input", i]
    return run_command(args, cwd=tmp_path, timeout=120)


def local_path(uri: str) -> Path:
    # Local data is addressed by absolute paths, as flytekit writes them.
    parsed = urlparse(uri)
    assert parsed.scheme in ("", "file") and Path(parsed.path).is_absolute(), uri
    return Path(parsed.path)


def test_quickstart_produces_ranking_and_report(tern_bin, tmp_path):
    result = run_quickstart(tern_bin, tmp_path, "days=7")
    assert result.returncode == 0, explain(result)
    out = json.loads(result.stdout)["outputs"]
    assert out["top_region"] in {"north", "south", "east", "west"}, out
    assert isinstance(out["revenue"], float) and out["revenue"] > 0, out
    ranking = local_path(out["ranking"]) / "00000"
    assert ranking.read_bytes()[:4] == b"PAR1", "ranking is not a parquet file"
    report = local_path(out["report"]).read_text()
    assert f"Top region: {out['top_region']}" in report, report
    assert str(out["revenue"]) in report, report


def test_quickstart_fails_clearly_when_no_order_qualifies(tern_bin, tmp_path):
    # Every generated amount is below 105, so the ranking is empty and top_region has no row to read.
    result = run_quickstart(tern_bin, tmp_path, "min_amount=1000")
    assert result.returncode == 1, explain(result)
    assert "top_region" in result.stderr and "TERN-Q006" in result.stderr, explain(result)
