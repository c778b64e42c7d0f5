"""The engine's state in PostgreSQL, as a user picks it: `--state postgres://…`, `[engine] state` (also as a secret
reference), `TERN_ENGINE__STATE`; `tern executions` / `tern show` read it back; passwords never print.

The server is the one scripts/test.sh starts (TERN_TEST_POSTGRES_URL); every test creates its own database on it.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import uuid
from glob import glob
from urllib.parse import urlsplit, urlunsplit

import pytest

from tern_interop import WORKFLOWS_DIR, child_env, explain, missing_peer, run_command

IN_PROCESS = WORKFLOWS_DIR / "in_process.yaml"


def psql() -> str:
    found = shutil.which("psql") or next(iter(sorted(glob("/usr/lib/postgresql/*/bin/psql"), reverse=True)), None)
    if not found:
        missing_peer("psql (Debian's postgresql-client) is not installed")
    return found


@pytest.fixture
def pg_url() -> str:
    """A fresh database on the test server: its URL (with the server's password)."""
    server = os.environ.get("TERN_TEST_POSTGRES_URL", "").strip()
    if not server:
        missing_peer("TERN_TEST_POSTGRES_URL is not set (scripts/test.sh starts a PostgreSQL server and sets it)")
    name = f"tern_interop_{uuid.uuid4().hex}"
    subprocess.run([psql(), server, "-qAt", "-c", f"CREATE DATABASE {name}"], check=True, capture_output=True,
                   timeout=60)
    parts = urlsplit(server)
    return urlunsplit(parts._replace(path=f"/{name}"))


def password_of(url: str) -> str:
    password = urlsplit(url).password
    assert password, f"the test server's URL has no password: {url.split('@')[-1]}"
    return password


def test_run_then_list_and_show_from_postgres(tern_bin, tmp_path, pg_url):
    result = run_command([tern_bin, "run", IN_PROCESS, "--state", pg_url, "--input", "x=5", "--input", "greeting=pg",
                          "--json"], cwd=tmp_path, timeout=120)
    assert result.returncode == 0, explain(result)
    summary = json.loads(result.stdout)
    assert summary["phase"] == "SUCCEEDED" and summary["outputs"] == {"n": 5, "greeting": "pg"}, summary
    run_id = summary["execution_id"]
    # No local state: node data goes to .tern/data under the working directory.
    assert (tmp_path / ".tern" / "data" / run_id).is_dir(), list(tmp_path.rglob("*"))
    assert not (tmp_path / ".tern" / "tern.db").exists(), "nothing was written to a SQLite database"

    listed = run_command([tern_bin, "executions", "--state", pg_url, "--json"], cwd=tmp_path, timeout=60)
    assert listed.returncode == 0, explain(listed)
    assert [e["id"] for e in json.loads(listed.stdout)] == [run_id]
    shown = run_command([tern_bin, "show", run_id, "--state", pg_url], cwd=tmp_path, timeout=60)
    assert shown.returncode == 0, explain(shown)
    assert "SUCCEEDED" in shown.stdout, explain(shown)
    assert password_of(pg_url) not in shown.stdout + shown.stderr + result.stderr


def test_state_from_the_config_as_a_secret_reference_and_from_the_environment(tern_bin, tmp_path, pg_url):
    config = tmp_path / "tern.toml"
    config.write_text('[engine]\nstate = "env:TERN_INTEROP_STATE_URL"\n')
    env = child_env({"TERN_INTEROP_STATE_URL": pg_url})
    result = run_command([tern_bin, "run", IN_PROCESS, "--config", config, "--input", "greeting=cfg", "--json"],
                         cwd=tmp_path, timeout=120, env=env)
    assert result.returncode == 0, explain(result)
    run_id = json.loads(result.stdout)["execution_id"]

    # TERN_ENGINE__STATE (the documented override scheme) reaches the same database, without a file.
    listed = run_command([tern_bin, "executions", "--json"], cwd=tmp_path, timeout=60,
                         env=child_env({"TERN_ENGINE__STATE": pg_url}))
    assert listed.returncode == 0, explain(listed)
    assert [e["id"] for e in json.loads(listed.stdout)] == [run_id]
    assert not (tmp_path / ".tern" / "tern.db").exists()

    # The flag wins over the configuration: an empty SQLite state elsewhere.
    local = run_command([tern_bin, "executions", "--config", config, "--state-dir", tmp_path / "local", "--json"],
                        cwd=tmp_path, timeout=60, env=env)
    assert local.returncode == 0, explain(local)
    assert json.loads(local.stdout) == []


def test_passwords_never_print(tern_bin, tmp_path, pg_url):
    password = password_of(pg_url)
    shown = run_command([tern_bin, "config", "show"], cwd=tmp_path, timeout=60,
                        env=child_env({"TERN_ENGINE__STATE": pg_url}))
    assert shown.returncode == 0, explain(shown)
    assert "[engine]" in shown.stdout and ":***@" in shown.stdout, shown.stdout
    assert password not in shown.stdout + shown.stderr

    wrong = pg_url.replace(f":{password}@", ":wrong-pw-4711@")
    result = run_command([tern_bin, "executions", "--state", wrong], cwd=tmp_path, timeout=60)
    assert result.returncode != 0, explain(result)
    assert "TERN-E405" in result.stderr, explain(result)
    assert "wrong-pw-4711" not in result.stdout + result.stderr, explain(result)
    assert ":***@" in result.stderr, explain(result)

    result = run_command([tern_bin, "executions", "--state", "postgres://tern:hunter2@127.0.0.1:notaport/x"],
                         cwd=tmp_path, timeout=60)
    assert result.returncode != 0 and "TERN-E404" in result.stderr, explain(result)
    assert "hunter2" not in result.stdout + result.stderr, explain(result)
