"""deploy/: the container build, the Kubernetes manifests and FlytePropeller's connector snippet.

There is no Docker engine and no Kubernetes cluster on the machines that run these tests, so:
- `deploy_check.check` validates everything statically against the real `tern` binary (`tern config show` on
  every ConfigMap) and against each other (ports, names, namespaces, secrets, timeouts); broken copies prove
  that it catches what it claims to;
- `kubectl kustomize` (client only, no cluster) renders the kustomization;
- each group's ConfigMap is then served for real by `tern serve` on loopback, with its Secret's files and
  environment recreated in a temporary directory: health answers SERVING without a token, the backends refuse
  calls without their token, and a DuckDB task goes through tern-gateway's route to tern-sql and back.
"""

from __future__ import annotations

import re
import secrets
import shutil
import signal
import subprocess
import urllib.request
from pathlib import Path
from typing import Dict, List

import grpc
import pytest
import yaml
from flyteidl.admin import agent_pb2 as admin
from flyteidl.core import tasks_pb2
from flyteidl.service import agent_pb2_grpc
from grpc_health.v1 import health_pb2

import deploy_check
from tern_interop import (
    AGENT_SERVICES,
    REPO,
    ManagedProcess,
    child_env,
    free_port,
    get_request,
    health_status,
    lit_int,
    literal_map,
    missing_peer,
    phase_name,
    poll_until,
    propeller_metadata,
    simple_type,
    task_template,
    wait_until_serving,
)

DEPLOY = REPO / "deploy"


def test_deploy_files_are_consistent(tern_bin):
    problems = deploy_check.check(REPO, tern_bin)
    assert not problems, "deploy/ is inconsistent:\n- " + "\n- ".join(problems)


def test_every_group_was_checked(tern_bin, tmp_path):
    """Guards the checker itself: it must have found and validated all three groups and the propeller snippet."""
    checker = deploy_check.load_groups(REPO, tern_bin, tmp_path)
    assert sorted(g.name for g in checker.groups) == ["tern-gateway", "tern-hooks", "tern-sql"]
    for g in checker.groups:
        assert g.effective["server"]["addr"] == "0.0.0.0:8000", g.name
        assert g.effective["metrics"]["addr"] == "0.0.0.0:9090", g.name
        assert g.services and g.services[0].name == g.name
    assert checker.dockerfile is not None and len(checker.dockerfile.stages) == 3


# A broken copy of deploy/ per case: (file, text to replace, replacement, what the report must mention).
BREAKAGES = {
    "unknown config key": ("deploy/kubernetes/tern-sql.yaml", "    max_concurrency = 2\n", "    max_concurency = 2\n",
                           "max_concurency"),
    "agent not in the build": ("deploy/kubernetes/tern-gateway.yaml", "[agents.echo]\n", "[agents.teradata]\n", "TERN-G003"),
    "container port": ("deploy/kubernetes/tern-hooks.yaml", "containerPort: 8000", "containerPort: 8001",
                       "no container port 8000"),
    "listen port": ("deploy/kubernetes/tern-hooks.yaml", 'addr = "0.0.0.0:8000"', 'addr = "0.0.0.0:8001"', "8001"),
    "probe port": ("deploy/kubernetes/tern-gateway.yaml", "grpc:\n              port: 8000",
                   "grpc:\n              port: 8080", "probes port 8080"),
    "service targetPort": ("deploy/kubernetes/tern-sql.yaml", "targetPort: grpc", "targetPort: 8001", "targets 8001"),
    "metrics annotation": ("deploy/kubernetes/tern-sql.yaml", 'prometheus.io/port: "9090"', 'prometheus.io/port: "9091"',
                           "prometheus.io/port"),
    "propeller endpoint port": ("deploy/flyte/propeller-connector-service.yaml", "endpoint: k8s://tern-gateway.flyte:8000",
                                "endpoint: k8s://tern-gateway.flyte:8080", "port 8080"),
    "propeller endpoint namespace": ("deploy/flyte/propeller-connector-service.yaml",
                                     "endpoint: k8s://tern-gateway.flyte:8000", "endpoint: k8s://tern-gateway.default:8000",
                                     "no Service tern-gateway in namespace default"),
    "propeller timeout op": ("deploy/flyte/propeller-connector-service.yaml", "ListConnectors: 10s", "ListAgents: 10s",
                             "ListAgents"),
    "propeller timeout too short": ("deploy/flyte/propeller-connector-service.yaml", "ExecuteTaskSync: 60s",
                                    "ExecuteTaskSync: 10s", "ExecuteTaskSync"),
    "sync type mapped": ("deploy/flyte/propeller-connector-service.yaml", "      duckdb: tern\n",
                         "      duckdb: tern\n      webhook: tern\n", "webhook is synchronous"),
    "connector-service not enabled": ("deploy/flyte/propeller-connector-service.yaml", "      - connector-service\n", "",
                                      "enabled-plugins"),
    "group URL port": ("deploy/kubernetes/tern-gateway.yaml", "tern-sql.flyte.svc.cluster.local:8000",
                       "tern-sql.flyte.svc.cluster.local:9000", "has no port 9000"),
    "secret file not mounted": ("deploy/kubernetes/tern-gateway.yaml",
                                "              - key: token-hooks\n                path: token-hooks\n", "", "token-hooks"),
    "env variable missing": ("deploy/kubernetes/tern-sql.yaml", "            - name: TERN_HANDLE_KEY\n",
                             "            - name: TERN_HANDLE_KEY_TYPO\n", "does not define TERN_HANDLE_KEY"),
    "secret key missing": ("deploy/kubernetes/secrets.yaml", "  token-gateway: CHANGE-ME\n---", "  token-gw: CHANGE-ME\n---",
                           "no key 'token-gateway'"),
    "real secret committed": ("deploy/kubernetes/secrets.yaml", "  token-sql: CHANGE-ME",
                              "  token-sql: 9f2c4e7a1b3d5f60a8c2e4b6d8f0a1c3", "looks like a real secret"),
    "data store on the read-only root": ("deploy/kubernetes/tern-hooks.yaml", 'root = "/var/lib/tern/data"',
                                         'root = "/srv/tern/data"', "not on a writable volume"),
    "duckdb scaled out": ("deploy/kubernetes/tern-sql.yaml", "  replicas: 1\n", "  replicas: 3\n", "3 replicas"),
    "grace period too short": ("deploy/kubernetes/tern-hooks.yaml", "terminationGracePeriodSeconds: 75",
                               "terminationGracePeriodSeconds: 30", "terminationGracePeriodSeconds 30"),
    "drain shorter than a call": ("deploy/kubernetes/tern-hooks.yaml", 'drain_timeout = "55s"', 'drain_timeout = "10s"',
                                  "drain_timeout 10s < the longest call in flight"),
    "grace period shorter than the drain": ("deploy/kubernetes/tern-sql.yaml", 'drain_timeout = "25s"',
                                            'drain_timeout = "40s"', "drain_timeout 40s + 3s"),
    "writable root filesystem": ("deploy/kubernetes/tern-sql.yaml", "readOnlyRootFilesystem: true",
                                 "readOnlyRootFilesystem: false", "readOnlyRootFilesystem"),
    "network policy port": ("deploy/kubernetes/tern-sql.yaml", "        - port: 8000\n", "        - port: 8443\n",
                            "admits port 8443"),
    "kustomization misses a file": ("deploy/kubernetes/kustomization.yaml", "  - tern-hooks.yaml\n", "",
                                    "does not list tern-hooks.yaml"),
    "dockerfile root user": ("deploy/Dockerfile", "USER 65532:65532", "USER root", "USER is 'root'"),
    "dockerfile expose": ("deploy/Dockerfile", "EXPOSE 8000 9090", "EXPOSE 8080 9090", "EXPOSE [8080, 9090]"),
    "dockerfile entrypoint": ("deploy/Dockerfile", 'ENTRYPOINT ["tern", "serve"]', "ENTRYPOINT tern serve",
                              "ENTRYPOINT"),
    "dockerfile unsafe default agents": ("deploy/Dockerfile", "ARG TERN_FEATURES=agent-duckdb,",
                                         "ARG TERN_FEATURES=agent-shell,agent-duckdb,", "agent-shell"),
    "dockerfile default agents not in the readme": ("deploy/Dockerfile", ",agent-lepton\n", "\n",
                                                    "deploy/README.md: does not state"),
    "tern.toml example key": ("deploy/tern.toml", '#default_location = "US"', '#default_locaton = "US"',
                              "default_locaton"),
    "configmap example secret value": ("deploy/kubernetes/tern-gateway.yaml",
                                       '#token = "file:/etc/tern/secrets/databricks-token"', '#token = "dapi-pasted"',
                                       "commented example sections"),
    "dockerfile unknown feature": ("deploy/Dockerfile", "ARG TERN_FEATURES=agent-duckdb,",
                                   "ARG TERN_FEATURES=agent-duck,", "'agent-duck'"),
    "dockerfile duckdb release": ("deploy/Dockerfile", "ARG DUCKDB_NPM_RELEASE=1.5.6-r.1",
                                  "ARG DUCKDB_NPM_RELEASE=1.5.5-r.1", "DUCKDB_NPM_RELEASE"),
    "dockerfile unpinned builder": ("deploy/Dockerfile", "FROM rust:1.95.0-bookworm AS builder",
                                    "FROM rust:latest AS builder", "not pinned"),
    "dockerfile without cache mounts": ("deploy/Dockerfile", "--mount=type=cache,id=tern-target,target=/src/target,sharing=locked",
                                        "", "target directory"),
    "dockerignore drops sources": (".dockerignore", "**/target\n", "**/target\nagents\n", "agents/duckdb"),
}


def broken_copy(tmp: Path, path: str, old: str, new: str) -> Path:
    repo = tmp / "repo"
    shutil.copytree(DEPLOY, repo / "deploy")
    for name in ("Cargo.toml", ".dockerignore", "agents/duckdb/build.rs"):
        (repo / name).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy(REPO / name, repo / name)
    target = repo / path
    text = target.read_text()
    assert old in text, f"the breakage no longer applies: {old!r} is not in {path}"
    target.write_text(text.replace(old, new, 1))
    return repo


def test_the_checker_accepts_an_intact_copy(tern_bin, tmp_path):
    repo = broken_copy(tmp_path, "deploy/tern.toml", "[server]", "[server]")
    assert deploy_check.check(repo, tern_bin) == []


@pytest.mark.parametrize("case", sorted(BREAKAGES))
def test_the_checker_catches(tern_bin, tmp_path, case):
    path, old, new, expected = BREAKAGES[case]
    repo = broken_copy(tmp_path, path, old, new)
    problems = deploy_check.check(repo, tern_bin)
    assert any(expected in p for p in problems), f"{case}: no problem mentions {expected!r}; reported: {problems}"


def test_kustomization_renders(tmp_path):
    # An extra check where kubectl happens to be installed: scripts/test.sh cannot install a kubectl with a recent
    # kustomize from Debian (bookworm ships 1.20), and deploy_check already verifies the kustomization's file list.
    kubectl = shutil.which("kubectl")
    if kubectl is None:
        pytest.skip("kubectl is not installed: the kustomization's file list is still checked by deploy_check")
    result = subprocess.run([kubectl, "kustomize", str(DEPLOY / "kubernetes")], capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    rendered = [d for d in yaml.safe_load_all(result.stdout) if d]
    kinds = sorted(f"{d['kind']}/{d['metadata']['name']}" for d in rendered)
    assert kinds == sorted([
        "ConfigMap/tern-gateway-config", "ConfigMap/tern-hooks-config", "ConfigMap/tern-sql-config",
        "Deployment/tern-gateway", "Deployment/tern-hooks", "Deployment/tern-sql",
        "NetworkPolicy/tern-gateway", "NetworkPolicy/tern-hooks", "NetworkPolicy/tern-sql",
        "PodDisruptionBudget/tern-gateway", "PodDisruptionBudget/tern-hooks",
        "Secret/tern-gateway-secrets", "Secret/tern-hooks-secrets", "Secret/tern-sql-secrets",
        "Service/tern-gateway", "Service/tern-hooks", "Service/tern-sql",
    ])
    assert all(d["metadata"]["namespace"] == "flyte" for d in rendered)
    images = {c["image"] for d in rendered if d["kind"] == "Deployment" for c in d["spec"]["template"]["spec"]["containers"]}
    assert images == {"registry.example.com/flyte/tern:0.1.0"}


# --------------------------------------------------------------------------------------------------------------
# the groups, served for real on loopback
# --------------------------------------------------------------------------------------------------------------


class LocalGroup:
    """One Deployment's container recreated locally: its ConfigMap's tern.toml, its mounted files and env."""

    def __init__(self, group: deploy_check.Group, root: Path):
        self.group = group
        self.root = root / group.name
        self.port, self.metrics_port = free_port(), free_port()
        self.address = f"127.0.0.1:{self.port}"
        self.process: ManagedProcess | None = None

    def local_path(self, path: str) -> str:
        """A path inside one of the container's mounts, mapped into this group's temporary directory."""
        for mount, _volume in self.group.mounts():
            mpath = mount["mountPath"]
            if not mount.get("subPath") and deploy_check.under(path, mpath):
                return str(self.root / mount["name"] / Path(path).relative_to(mpath))
        raise AssertionError(f"{path} is not inside a mount of {self.group.name}")

    def prepare(self, secret_values: Dict[tuple, str], url_map: Dict[str, str]) -> Path:
        """Writes the Secret files and the config (paths and group URLs mapped to local ones)."""
        text = self.group.config_text
        for mount, volume in self.group.mounts():
            (self.root / mount["name"]).mkdir(parents=True, exist_ok=True)
            if "secret" in volume:
                name = volume["secret"]["secretName"]
                for item in volume["secret"].get("items", []):
                    (self.root / mount["name"] / item["path"]).write_text(secret_values[(name, item["key"])] + "\n")
        # Every quoted absolute path (or file: reference) inside a mount moves to the local directory of that mount.
        def relocate(m: re.Match) -> str:
            try:
                return f'"{m[1] or ""}{self.local_path(m[2])}"'
            except AssertionError:
                return m[0]
        text = re.sub(r'"(file:)?(/[^"]*)"', relocate, text)
        for url, local in url_map.items():
            text = text.replace(url, local)
        config = self.root / "tern.toml"
        config.write_text(text)
        return config

    def env(self, secret_values: Dict[tuple, str]) -> Dict[str, str]:
        env = {}
        for name, e in self.group.env().items():
            if "value" in e:
                env[name] = str(e["value"])
            else:
                ref = e["valueFrom"]["secretKeyRef"]
                env[name] = secret_values[(ref["name"], ref["key"])]
        return env

    def start(self, tern_bin: Path, logs_dir: Path, secret_values, url_map) -> None:
        config = self.prepare(secret_values, url_map)
        env = child_env(self.env(secret_values))
        for key in [k for k in env if k.startswith("TERN_") and "__" in k]:
            del env[key]  # only the manifest's environment, no stray overrides
        argv = [tern_bin, "serve", "--config", config, "--addr", self.address,
                "--metrics-addr", f"127.0.0.1:{self.metrics_port}"]
        self.process = ManagedProcess(f"deploy-{self.group.name}", argv, logs_dir / f"deploy-{self.group.name}-{self.port}.log",
                                      cwd=self.root, env=env)
        wait_until_serving(self.process, self.address, timeout=30)


@pytest.fixture
def local_groups(tern_bin, logs_dir, tmp_path):
    checker = deploy_check.load_groups(REPO, tern_bin, tmp_path / "check")
    assert not checker.problems, checker.problems
    groups = {g.name: LocalGroup(g, tmp_path / "groups") for g in checker.groups}
    # Random values for every Secret key, then the pairs that must match (a group's client token = the backend's
    # token named after the caller), derived from the configs exactly as the checker pairs them.
    values = {(s.name, k): secrets.token_hex(24) for s in checker.of_kind("Secret")
              for k in (s.doc.get("stringData") or {})}
    url_map: Dict[str, str] = {}
    for g in checker.groups:
        for gname, grp in (g.effective.get("groups") or {}).items():
            for ep in grp["endpoints"]:
                host, _, _ = deploy_check.url_host_port(ep["url"])
                _svc, backend = checker.group_by_host(host, g.deployment.namespace)
                url_map[ep["url"]] = f"http://{groups[backend.name].address}"
                front_ref = secret_ref(g, (grp.get("client") or {}).get("token"))
                token = next(t for t in backend.effective["auth"]["tokens"] if t["name"] == g.name)
                values[secret_ref(backend, token["token"])] = values[front_ref]
    started: List[LocalGroup] = []
    try:
        # Backends first (no [groups]), then the fronts.
        for local in sorted(groups.values(), key=lambda lg: bool(lg.group.effective.get("groups"))):
            local.start(tern_bin, logs_dir, values, url_map)
            started.append(local)
        yield groups
    finally:
        for local in started:
            local.process.stop()


def test_placeholder_secrets_keep_every_group_from_starting(tern_bin, logs_dir, tmp_path):
    """secrets.yaml as committed: no group may start with a published placeholder as a token or handle key."""
    checker = deploy_check.load_groups(REPO, tern_bin, tmp_path / "check")
    committed = {(s.name, k): str(v) for s in checker.of_kind("Secret") for k, v in (s.doc.get("stringData") or {}).items()}
    for g in checker.groups:
        local = LocalGroup(g, tmp_path / "groups")
        config = local.prepare(committed, {})
        result = subprocess.run([str(tern_bin), "serve", "--config", str(config), "--addr", local.address],
                                env=child_env(local.env(committed)), cwd=local.root, capture_output=True, text=True,
                                timeout=60)
        assert result.returncode == 2, (g.name, result.stderr)
        assert "16 characters" in result.stderr, (g.name, result.stderr)


def secret_ref(group: deploy_check.Group, ref: str) -> tuple:
    """(Secret name, key) behind a `file:` reference of the group's config."""
    path = ref[len("file:"):]
    for mount, volume in group.mounts():
        if "secret" in volume and deploy_check.under(path, mount["mountPath"]):
            rel = str(Path(path).relative_to(mount["mountPath"]))
            key = next(i["key"] for i in volume["secret"]["items"] if i["path"] == rel)
            return volume["secret"]["secretName"], key
    raise AssertionError(f"{ref} is not a mounted Secret of {group.name}")


def test_each_group_serves_its_configmap(local_groups, tmp_path):
    front, sql, hooks = local_groups["tern-gateway"], local_groups["tern-sql"], local_groups["tern-hooks"]

    # Health: what the kubelet's gRPC probes ask, with no token, on every group.
    for local in local_groups.values():
        with grpc.insecure_channel(local.address) as channel:
            for service in ("", *AGENT_SERVICES):
                assert health_status(channel, service) == health_pb2.HealthCheckResponse.SERVING, (local.group.name, service)
        body = urllib.request.urlopen(f"http://127.0.0.1:{local.metrics_port}/metrics", timeout=10).read().decode()
        assert "tern_agent_tasks" in body or "tern_requests" in body or body.startswith("#"), body[:200]

    # The backends refuse agent calls without their token; tern-gateway (what propeller calls) needs none.
    for backend in (sql, hooks):
        with grpc.insecure_channel(backend.address) as channel:
            with pytest.raises(grpc.RpcError) as info:
                agent_pb2_grpc.AgentMetadataServiceStub(channel).ListAgents(admin.ListAgentsRequest(), timeout=10)
            assert info.value.code() == grpc.StatusCode.UNAUTHENTICATED, backend.group.name

    with grpc.insecure_channel(front.address) as channel:
        metadata = agent_pb2_grpc.AgentMetadataServiceStub(channel)
        # The groups' agent lists are fetched at the first health check: wait for both.
        def categories():
            agents = metadata.ListAgents(admin.ListAgentsRequest(), timeout=10).agents
            return {c.name: a.is_sync for a in agents for c in a.supported_task_categories}
        seen = poll_until(categories, lambda c: {"duckdb", "webhook"} <= set(c), timeout=20, interval=0.3)
        assert seen.get("duckdb") is False and seen.get("webhook") is True, seen

        # What the static checker assumes about synchronous types, and what propeller's mapping needs: every type
        # in connectorForTaskTypes is asynchronous on the gateway it maps to.
        snippet = yaml.safe_load((DEPLOY / "flyte" / "propeller-connector-service.yaml").read_text())
        for task_type in snippet["plugins"]["connector-service"]["connectorForTaskTypes"]:
            assert seen.get(task_type) is False, (task_type, seen)
        assert {t for t, sync in seen.items() if sync} <= deploy_check.SYNC_TASK_TYPES, seen

        # A DuckDB task the way propeller sends it, to tern-gateway: routed to tern-sql with the paired token,
        # the handle signed with the gateway's handle key from its env, polled back through the gateway.
        template = task_template("duckdb", inputs={"x": simple_type("INTEGER")}, outputs={"y": simple_type("INTEGER")})
        template.sql.CopyFrom(tasks_pb2.Sql(statement="SELECT $x * 2 AS y", dialect=tasks_pb2.Sql.ANSI))
        meta = propeller_metadata(template)
        prefix = sql.local_path(sql.group.effective["data_store"]["root"] + "/metadata/deploy-test/n0/0")
        request = admin.CreateTaskRequest(inputs=literal_map(x=lit_int(21)), template=template, output_prefix=prefix,
                                          task_execution_metadata=meta)
        handle = agent_pb2_grpc.AsyncAgentServiceStub(channel).CreateTask(request, timeout=30).resource_meta
        stub = agent_pb2_grpc.AsyncAgentServiceStub(channel)
        response = poll_until(lambda: stub.GetTask(get_request("duckdb", handle, prefix), timeout=30),
                              lambda r: phase_name(r.resource.phase) in ("SUCCEEDED", "FAILED", "RETRYABLE_FAILED"),
                              timeout=60, interval=0.2)
        assert phase_name(response.resource.phase) == "SUCCEEDED", response
        assert response.resource.outputs.literals["y"].scalar.primitive.integer == 42, response

    # On SIGTERM every group reports NOT_SERVING, finishes and exits 0 (the pod's graceful termination).
    for local in local_groups.values():
        local.process.signal_group(signal.SIGTERM)
        assert local.process.proc.wait(timeout=30) == 0, local.process.describe()
