"""Static checks of deploy/: the Dockerfile, the Kubernetes manifests and FlytePropeller's connector snippet.

`check(repo, tern_bin)` returns a list of problems (empty: consistent). Each problem names the file and the
object, so a failing test says what to fix. What is checked:

- every ConfigMap's tern.toml passes the real `tern config show` (an unknown key, a bad value or an agent the
  binary lacks fails it), with the container's environment, and its effective configuration (defaults
  included) is what the other checks compare against;
- container ports, probes (Kubernetes' native gRPC probe), Prometheus annotations, Service ports/targetPorts and
  NetworkPolicy ports match `[server] addr` / `[metrics] addr`;
- every `file:` secret reference and file path of the config is inside a mount of the right Secret key, every
  `env:` reference is a variable of the container (and its secretKeyRef exists), every directory Tern writes is
  on a writable volume (the root filesystem is read-only);
- security context, resources, `[server] drain_timeout` at least the longest call in flight and the grace period
  longer than preStop + drain_timeout + 3 s (the drain's own graces), one replica for agents
  whose jobs live in the process;
- tern-gateway's [groups] URLs name Services of the kustomization on the right port, with a token the backend
  accepts; FlytePropeller's endpoints name the Services (k8s://svc.ns:port with the container port), `insecure`
  matches TLS, round_robin, the timeout keys are the plugin's op names and exceed the gateway's own, and
  connectorForTaskTypes lists asynchronous task types only;
- the Dockerfile (parsed here: it cannot be built on this machine): stages, pinned bases, the TERN_FEATURES
  build arg (agents `tern serve` exposes without an opt-in, as deploy/README.md states them), cache mounts, the prebuilt libduckdb beside the binary, non-root USER, EXPOSE, ENTRYPOINT/CMD;
  .dockerignore keeps what cargo needs; kustomization.yaml lists every manifest; committed Secrets are
  placeholders Tern refuses to start with;
- the commented example sections of deploy/tern.toml and of the ConfigMaps, uncommented, pass `tern config show`.
"""

from __future__ import annotations

import base64
import json
import os
import re
import shlex
import subprocess
import tempfile
import tomllib
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from typing import Dict, Iterable, List, Optional, Set, Tuple

import yaml

AGENT_SERVICES = (
    "flyteidl.service.AsyncAgentService",
    "flyteidl.service.SyncAgentService",
    "flyteidl.service.AgentMetadataService",
)
# Op names FlytePropeller's connector plugin looks up in `timeouts` (not ListAgents: that is agent-service's).
PROPELLER_TIMEOUT_OPS = {"CreateTask", "GetTask", "DeleteTask", "ExecuteTaskSync", "ListConnectors"}
# Today's agents: each serves the task type of its own name. `webhook` is the synchronous one (ExecuteTaskSync);
# the live test in test_deploy.py checks this against ListAgents of the running groups.
SYNC_TASK_TYPES = {"webhook"}
# Agents whose jobs run inside the gateway process: GetTask must reach the pod that runs the job.
IN_PROCESS_AGENTS = {"duckdb", "shell"}
# `tern serve` exposes these without an explicit opt-in (docs/gateway.md); the image's default build arg must not
# compile in more.
SAFE_FEATURES = {"agent-duckdb", "agent-webhook", "agent-echo", "agent-sleep", "agent-snowflake", "agent-bigquery",
                 "agent-databricks", "agent-batch", "agent-ray", "agent-spark", "agent-lepton"}
MIN_SECRET_LEN = 16  # Tern refuses shorter tokens and handle keys


# ------------------------------------------------------------------------------------------------------------
# small parsers
# ------------------------------------------------------------------------------------------------------------


def parse_duration(text: str) -> float:
    """humantime-style durations as Tern prints and reads them: "20s", "5m", "300ms", "1h 30m", "1m 5s"."""
    units = {"ms": 0.001, "s": 1.0, "m": 60.0, "min": 60.0, "h": 3600.0, "us": 1e-6, "ns": 1e-9, "d": 86400.0}
    total, rest = 0.0, str(text).replace(" ", "")
    if not rest:
        raise ValueError(f"empty duration {text!r}")
    for number, unit in re.findall(r"(\d+(?:\.\d+)?)([a-z]+)", rest):
        if unit not in units:
            raise ValueError(f"unknown unit in duration {text!r}")
        total += float(number) * units[unit]
    if re.sub(r"(\d+(?:\.\d+)?)([a-z]+)", "", rest):
        raise ValueError(f"not a duration: {text!r}")
    return total


def addr_port(addr: str) -> Tuple[str, int]:
    host, _, port = addr.rpartition(":")
    return host.strip("[]"), int(port)


def walk_strings(value, path: str = "") -> Iterable[Tuple[str, str]]:
    """(dotted key, text) of every string in a JSON-like tree."""
    if isinstance(value, dict):
        for k, v in value.items():
            yield from walk_strings(v, f"{path}.{k}" if path else str(k))
    elif isinstance(value, list):
        for i, v in enumerate(value):
            yield from walk_strings(v, f"{path}[{i}]")
    elif isinstance(value, str):
        yield path, value


def under(path: str, directory: str) -> bool:
    p, d = PurePosixPath(path), PurePosixPath(directory)
    return p == d or d in p.parents


# ------------------------------------------------------------------------------------------------------------
# manifests
# ------------------------------------------------------------------------------------------------------------


@dataclass
class Obj:
    kind: str
    name: str
    namespace: str
    doc: dict
    file: str

    @property
    def ref(self) -> str:
        return f"{self.file}: {self.kind}/{self.name}"


@dataclass
class Group:
    """One Deployment with what belongs to it."""

    deployment: Obj
    container: dict
    config_text: str = ""
    config_file: str = ""
    effective: dict = field(default_factory=dict)
    services: List[Obj] = field(default_factory=list)

    @property
    def name(self) -> str:
        return self.deployment.name

    @property
    def pod(self) -> dict:
        return self.deployment.doc["spec"]["template"]["spec"]

    @property
    def pod_labels(self) -> Dict[str, str]:
        return self.deployment.doc["spec"]["template"]["metadata"].get("labels", {})

    def server_port(self) -> int:
        return addr_port(self.effective["server"]["addr"])[1]

    def metrics_port(self) -> Optional[int]:
        addr = self.effective.get("metrics", {}).get("addr")
        return addr_port(addr)[1] if addr else None

    def served_agents(self) -> Set[str]:
        return {name for name, section in self.effective.get("agents", {}).items() if section.get("enabled")}

    def reachable_task_types(self) -> Set[str]:
        types = set(self.served_agents())
        for route in self.effective.get("routes", []):
            tt = route.get("task_type")
            types.update([tt] if isinstance(tt, str) else (tt or []))
        return types

    def container_port(self, port) -> Optional[int]:
        """A targetPort (number or name) as a container port number."""
        for p in self.container.get("ports", []):
            if port == p.get("containerPort") or port == p.get("name"):
                return p["containerPort"]
        return None

    def env(self) -> Dict[str, dict]:
        return {e["name"]: e for e in self.container.get("env", [])}

    def mounts(self) -> List[Tuple[dict, dict]]:
        volumes = {v["name"]: v for v in self.pod.get("volumes", [])}
        return [(m, volumes.get(m["name"], {})) for m in self.container.get("volumeMounts", [])]


def load_yaml_docs(path: Path) -> List[dict]:
    return [d for d in yaml.safe_load_all(path.read_text()) if d]


def pod_labels(deployment: Obj) -> Dict[str, str]:
    return deployment.doc["spec"]["template"]["metadata"].get("labels", {})


def selector_matches(selector: Dict[str, str], labels: Dict[str, str]) -> bool:
    return bool(selector) and all(labels.get(k) == v for k, v in selector.items())


# ------------------------------------------------------------------------------------------------------------
# the checker
# ------------------------------------------------------------------------------------------------------------


class Checker:
    def __init__(self, repo: Path, tern_bin: Path, workdir: Path):
        self.repo = repo
        self.deploy = repo / "deploy"
        self.kdir = self.deploy / "kubernetes"
        self.tern_bin = tern_bin
        self.workdir = workdir
        self.problems: List[str] = []
        self.objects: List[Obj] = []
        self.groups: List[Group] = []
        self.kustomization: dict = {}
        self.dockerfile: Optional["Dockerfile"] = None

    def problem(self, message: str) -> None:
        self.problems.append(message)

    # -- loading ---------------------------------------------------------------------------------------------

    def load(self) -> None:
        kfile = self.kdir / "kustomization.yaml"
        self.kustomization = yaml.safe_load(kfile.read_text()) or {}
        namespace = self.kustomization.get("namespace", "default")
        for path in sorted(self.kdir.glob("*.yaml")):
            if path.name == "kustomization.yaml":
                continue
            for doc in load_yaml_docs(path):
                meta = doc.get("metadata", {})
                self.objects.append(Obj(doc.get("kind", "?"), meta.get("name", "?"),
                                        meta.get("namespace", namespace), doc, f"deploy/kubernetes/{path.name}"))
        self.dockerfile = Dockerfile.parse(self.deploy / "Dockerfile")

    def find(self, kind: str, name: str, namespace: Optional[str] = None) -> Optional[Obj]:
        for o in self.objects:
            if o.kind == kind and o.name == name and (namespace is None or o.namespace == namespace):
                return o
        return None

    def of_kind(self, kind: str) -> List[Obj]:
        return [o for o in self.objects if o.kind == kind]

    # -- entry point -----------------------------------------------------------------------------------------

    def run(self) -> List[str]:
        self.load()
        self.check_kustomization()
        self.check_secrets_are_placeholders()
        for dep in self.of_kind("Deployment"):
            group = self.load_group(dep)
            if group is not None:
                self.groups.append(group)
        for group in self.groups:
            self.check_ports_and_probes(group)
            self.check_services(group)
            self.check_secret_references(group)
            self.check_writable_paths(group)
            self.check_security_and_resources(group)
            self.check_replicas(group)
        self.check_grace_periods()
        self.check_group_endpoints()
        self.check_network_policies()
        self.check_propeller()
        self.check_dockerfile()
        self.check_dockerignore()
        self.check_commented_examples()
        return self.problems

    # -- kustomization and secrets -----------------------------------------------------------------------------

    def check_kustomization(self) -> None:
        listed = list(self.kustomization.get("resources", []))
        present = sorted(p.name for p in self.kdir.glob("*.yaml") if p.name != "kustomization.yaml")
        for name in present:
            if name not in listed:
                self.problem(f"deploy/kubernetes/kustomization.yaml: resources does not list {name}")
        for name in listed:
            if not (self.kdir / name).is_file():
                self.problem(f"deploy/kubernetes/kustomization.yaml: resource {name} does not exist")
        if not self.kustomization.get("namespace"):
            self.problem("deploy/kubernetes/kustomization.yaml: no namespace")
        image_names = {i.get("name") for i in self.kustomization.get("images", [])}
        for dep in self.of_kind("Deployment"):
            for c in dep.doc["spec"]["template"]["spec"].get("containers", []):
                if c.get("image") not in image_names:
                    self.problem(f"{dep.ref}: image {c.get('image')!r} is not set by kustomization.yaml images")

    def check_secrets_are_placeholders(self) -> None:
        for s in self.of_kind("Secret"):
            values = dict(s.doc.get("stringData") or {})
            for k, v in (s.doc.get("data") or {}).items():
                values[k] = base64.b64decode(str(v)).decode("utf-8", "replace")
            for key, value in values.items():
                if len(str(value)) >= MIN_SECRET_LEN:
                    self.problem(f"{s.ref}: {key} looks like a real secret ({len(str(value))} characters); commit "
                                 f"placeholders shorter than {MIN_SECRET_LEN} (Tern refuses them) and set values at deploy time")

    # -- one group -----------------------------------------------------------------------------------------------

    def config_path_of(self, container: dict) -> str:
        args = container.get("args") or (self.dockerfile.cmd if self.dockerfile else None) or []
        if "--config" in args and args.index("--config") + 1 < len(args):
            return args[args.index("--config") + 1]
        return ""

    def load_group(self, dep: Obj) -> Optional[Group]:
        containers = dep.doc["spec"]["template"]["spec"].get("containers", [])
        if len(containers) != 1:
            self.problem(f"{dep.ref}: expected one container, found {len(containers)}")
            return None
        group = Group(dep, containers[0])
        config_path = self.config_path_of(group.container)
        if not config_path:
            self.problem(f"{dep.ref}: no --config in the container args or the image CMD")
            return None
        text = None
        for mount, volume in group.mounts():
            cm = volume.get("configMap")
            if not cm:
                continue
            if mount["mountPath"] == config_path:
                key = mount.get("subPath") or PurePosixPath(config_path).name
            elif under(config_path, mount["mountPath"]) and not mount.get("subPath"):
                key = str(PurePosixPath(config_path).relative_to(mount["mountPath"]))
                for item in cm.get("items", []):
                    if item.get("path") == key:
                        key = item["key"]
            else:
                continue
            obj = self.find("ConfigMap", cm["name"], dep.namespace)
            if obj is None:
                self.problem(f"{dep.ref}: ConfigMap {cm['name']} is not in the kustomization")
                return None
            text = obj.doc.get("data", {}).get(key)
            group.config_file = f"{obj.file} ConfigMap/{obj.name} key {key}"
            if text is None:
                self.problem(f"{dep.ref}: ConfigMap {cm['name']} has no key {key!r} (mounted as {config_path})")
                return None
        if text is None:
            self.problem(f"{dep.ref}: nothing mounts a ConfigMap at {config_path} (the path tern serve reads)")
            return None
        group.config_text = text
        effective = self.config_show(group)
        if effective is None:
            return None
        group.effective = effective
        group.services = [s for s in self.of_kind("Service")
                          if s.namespace == dep.namespace and selector_matches(s.doc["spec"].get("selector", {}), group.pod_labels)]
        return group

    def config_show(self, group: Group) -> Optional[dict]:
        path = self.workdir / f"{group.name}.toml"
        path.write_text(group.config_text)
        env = {k: v for k, v in os.environ.items() if not k.startswith("TERN_")}
        env.pop("AWS_REGION", None), env.pop("AWS_DEFAULT_REGION", None)
        for name, e in group.env().items():
            env[name] = str(e["value"]) if "value" in e else "placeholder-value-for-config-show"
        result = subprocess.run([str(self.tern_bin), "config", "show", "--json", "--config", str(path)],
                                cwd=self.workdir, env=env, capture_output=True, text=True, timeout=60)
        if result.returncode != 0:
            self.problem(f"{group.config_file}: `tern config show` refuses it (exit {result.returncode}): "
                         f"{result.stderr.strip()}")
            return None
        return json.loads(result.stdout)

    def check_ports_and_probes(self, g: Group) -> None:
        ref = g.deployment.ref
        host, grpc_port = addr_port(g.effective["server"]["addr"])
        if host not in ("0.0.0.0", "::"):
            self.problem(f"{g.config_file}: [server] addr {g.effective['server']['addr']} is not reachable from "
                         "outside the pod (listen on 0.0.0.0)")
        metrics = g.metrics_port()
        if metrics is None:
            self.problem(f"{g.config_file}: no [metrics] addr (Prometheus has nothing to scrape)")
        elif addr_port(g.effective["metrics"]["addr"])[0] not in ("0.0.0.0", "::"):
            self.problem(f"{g.config_file}: [metrics] addr is not reachable from outside the pod")
        ports = {p["containerPort"]: p for p in g.container.get("ports", [])}
        if grpc_port not in ports:
            self.problem(f"{ref}: no container port {grpc_port} ([server] addr); it declares {sorted(ports)}")
        if metrics is not None and metrics not in ports:
            self.problem(f"{ref}: no container port {metrics} ([metrics] addr); it declares {sorted(ports)}")
        for port in ports:
            if port not in (grpc_port, metrics):
                self.problem(f"{ref}: container port {port} is neither [server] addr ({grpc_port}) nor [metrics] addr ({metrics})")
        tls = g.effective["server"].get("tls")
        for kind in ("readinessProbe", "livenessProbe", "startupProbe"):
            probe = g.container.get(kind)
            if probe is None:
                if kind != "startupProbe":
                    self.problem(f"{ref}: no {kind}")
                continue
            grpc = probe.get("grpc")
            if grpc is None:
                self.problem(f"{ref}: {kind} is not Kubernetes' gRPC probe (grpc.health.v1)")
                continue
            if grpc.get("port") != grpc_port:
                self.problem(f"{ref}: {kind} probes port {grpc.get('port')}, but [server] addr listens on {grpc_port}")
            if grpc.get("service", "") not in ("", *AGENT_SERVICES):
                self.problem(f"{ref}: {kind} asks health of {grpc.get('service')!r}, which Tern does not report")
            if tls:
                self.problem(f"{ref}: {kind} is a gRPC probe but [server.tls] is set: kubelet's gRPC probe is plaintext only")
        annotations = g.deployment.doc["spec"]["template"]["metadata"].get("annotations", {})
        if annotations.get("prometheus.io/scrape") != "true":
            self.problem(f"{ref}: pod annotation prometheus.io/scrape is not \"true\"")
        if metrics is not None and annotations.get("prometheus.io/port") != str(metrics):
            self.problem(f"{ref}: pod annotation prometheus.io/port is {annotations.get('prometheus.io/port')!r}, "
                         f"[metrics] addr listens on {metrics}")
        if annotations.get("prometheus.io/path", "/metrics") != "/metrics":
            self.problem(f"{ref}: prometheus.io/path must be /metrics")

    def check_services(self, g: Group) -> None:
        if not g.services:
            self.problem(f"{g.deployment.ref}: no Service selects its pods")
            return
        grpc_port = g.server_port()
        for svc in g.services:
            targets = {}
            for p in svc.doc["spec"].get("ports", []):
                target = g.container_port(p.get("targetPort", p["port"]))
                if target is None:
                    self.problem(f"{svc.ref}: port {p['port']} targets {p.get('targetPort')!r}, no port of {g.name}'s container")
                    continue
                targets[target] = p
            if grpc_port not in targets:
                self.problem(f"{svc.ref}: no port targets the gRPC port {grpc_port} ([server] addr of {g.name})")
            elif targets[grpc_port]["port"] != grpc_port:
                self.problem(f"{svc.ref}: Service port {targets[grpc_port]['port']} != container port {grpc_port}: "
                             "propeller's k8s:// resolver dials pod IPs with the endpoint's port, keep them equal")
            if g.metrics_port() is not None and g.metrics_port() not in targets:
                self.problem(f"{svc.ref}: no port targets the metrics port {g.metrics_port()}")

    def secret_file(self, g: Group, path: str) -> Optional[str]:
        """None if `path` is a file of a mounted Secret/ConfigMap key, else why not."""
        for mount, volume in g.mounts():
            mpath = mount["mountPath"]
            if mount.get("subPath"):
                if path != mpath:
                    continue
                rel = mount["subPath"]
            elif under(path, mpath) and path != mpath:
                rel = str(PurePosixPath(path).relative_to(mpath))
            else:
                continue
            if "secret" in volume:
                source, kind, name = volume["secret"], "Secret", volume["secret"].get("secretName")
            elif "configMap" in volume:
                source, kind, name = volume["configMap"], "ConfigMap", volume["configMap"].get("name")
            else:
                return f"{path} is on volume {mount['name']}, not a Secret"
            obj = self.find(kind, name, g.deployment.namespace)
            if obj is None:
                return f"{kind} {name} (mounted at {mpath}) is not in the kustomization"
            items = source.get("items")
            key = rel
            if items is not None:
                mapped = [i["key"] for i in items if i.get("path") == rel]
                if not mapped:
                    return f"{path}: {kind} {name} is mounted at {mpath} with items that do not include {rel}"
                key = mapped[0]
            keys = set(obj.doc.get("stringData", {})) | set(obj.doc.get("data", {}))
            if key not in keys:
                return f"{path}: {kind} {name} has no key {key!r}"
            return None
        return f"{path} is not inside any volume mount of the container"

    def check_secret_references(self, g: Group) -> None:
        env = g.env()
        for key, text in walk_strings(g.effective):
            if text.startswith("file:"):
                why = self.secret_file(g, text[len("file:"):])
                if why:
                    self.problem(f"{g.config_file}: {key} = {text!r}: {why}")
            elif text.startswith("env:"):
                var = text[len("env:"):]
                if var not in env:
                    self.problem(f"{g.config_file}: {key} = {text!r}: {g.deployment.ref} does not define {var}")
                    continue
                ref = env[var].get("valueFrom", {}).get("secretKeyRef")
                if ref:
                    secret = self.find("Secret", ref["name"], g.deployment.namespace)
                    keys = set((secret.doc.get("stringData") or {})) | set((secret.doc.get("data") or {})) if secret else set()
                    if secret is None or ref["key"] not in keys:
                        self.problem(f"{g.deployment.ref}: env {var} refers to Secret {ref['name']} key {ref['key']}, which does not exist")
        # Plain file paths the gateway reads.
        paths = []
        tls = g.effective["server"].get("tls") or {}
        paths += [("server.tls.cert", tls.get("cert")), ("server.tls.client_ca", tls.get("client_ca"))]
        client = g.effective.get("client") or {}
        paths += [("client.ca_cert", client.get("ca_cert")), ("client.cert", client.get("cert"))]
        for name, grp in (g.effective.get("groups") or {}).items():
            c = grp.get("client") or {}
            paths += [(f"groups.{name}.client.ca_cert", c.get("ca_cert")), (f"groups.{name}.client.cert", c.get("cert"))]
        for key, path in paths:
            if path:
                why = self.secret_file(g, path)
                if why:
                    self.problem(f"{g.config_file}: {key} = {path!r}: {why}")
        secrets_dir = (g.effective.get("secrets") or {}).get("dir")
        if secrets_dir and not any(m["mountPath"] == secrets_dir and "secret" in v for m, v in g.mounts()):
            self.problem(f"{g.config_file}: [secrets] dir {secrets_dir} is not a mounted Secret")

    def writable(self, g: Group, path: str) -> bool:
        for mount, volume in g.mounts():
            if under(path, mount["mountPath"]) and not mount.get("readOnly") and ("emptyDir" in volume or "persistentVolumeClaim" in volume or "ephemeral" in volume):
                return True
        return False

    def check_writable_paths(self, g: Group) -> None:
        store = g.effective.get("data_store") or {}
        wanted = [("data_store.root", store.get("root"))]
        wanted += [(f"data_store.allowed_roots[{i}]", r) for i, r in enumerate(store.get("allowed_roots") or [])]
        agents = g.effective.get("agents") or {}
        if agents.get("duckdb", {}).get("enabled"):
            wanted.append(("agents.duckdb.temp_directory", agents["duckdb"].get("temp_directory")))
            wanted.append(("agents.duckdb.staging_directory", agents["duckdb"].get("staging_directory")))
        if agents.get("shell", {}).get("enabled"):
            wanted.append(("agents.shell.scratch_root", agents["shell"].get("scratch_root") or "/tmp"))
        wanted.append(("TMPDIR", g.env().get("TMPDIR", {}).get("value", "/tmp")))
        for key, path in wanted:
            if not path:
                self.problem(f"{g.config_file}: {key} is unset: its default is relative to the working directory; "
                             "set an absolute path on a writable volume")
            elif not PurePosixPath(path).is_absolute():
                self.problem(f"{g.config_file}: {key} = {path!r} is relative; set an absolute path on a writable volume")
            elif not self.writable(g, path):
                self.problem(f"{g.deployment.ref}: {key} = {path} is not on a writable volume (emptyDir), and the "
                             "root filesystem is read-only")

    def check_security_and_resources(self, g: Group) -> None:
        ref = g.deployment.ref
        pod_sc = g.pod.get("securityContext", {})
        sc = g.container.get("securityContext", {})
        if not (sc.get("runAsNonRoot", pod_sc.get("runAsNonRoot"))):
            self.problem(f"{ref}: runAsNonRoot is not true")
        if sc.get("runAsUser", pod_sc.get("runAsUser")) == 0:
            self.problem(f"{ref}: runs as uid 0")
        if sc.get("readOnlyRootFilesystem") is not True:
            self.problem(f"{ref}: readOnlyRootFilesystem is not true")
        if sc.get("allowPrivilegeEscalation") is not False:
            self.problem(f"{ref}: allowPrivilegeEscalation is not false")
        if "ALL" not in (sc.get("capabilities", {}).get("drop") or []):
            self.problem(f"{ref}: capabilities do not drop ALL")
        resources = g.container.get("resources", {})
        for section, keys in (("requests", ("cpu", "memory")), ("limits", ("memory",))):
            for key in keys:
                if key not in resources.get(section, {}):
                    self.problem(f"{ref}: no resources.{section}.{key}")

    def check_replicas(self, g: Group) -> None:
        in_process = g.served_agents() & IN_PROCESS_AGENTS
        spec = g.deployment.doc["spec"]
        if in_process:
            if spec.get("replicas", 1) != 1:
                self.problem(f"{g.deployment.ref}: serves {sorted(in_process)}, whose jobs live in the pod, with "
                             f"{spec.get('replicas')} replicas: a GetTask reaching another pod reports the job lost")
            if spec.get("strategy", {}).get("type") != "Recreate":
                self.problem(f"{g.deployment.ref}: serves {sorted(in_process)}: use strategy Recreate (a rolling update "
                             "runs two pods, and GetTask calls reach the one without the job)")
        elif (g.effective.get("routes") or g.served_agents() - SYNC_TASK_TYPES) and spec.get("replicas", 1) > 1:
            if not g.effective["server"].get("handle_key"):
                self.problem(f"{g.deployment.ref}: several replicas issue handles but [server] handle_key is unset")

    # -- across groups -----------------------------------------------------------------------------------------

    def group_by_host(self, host: str, namespace: str) -> Tuple[Optional[Obj], Optional[Group]]:
        """The Service (and its group) a cluster DNS name `svc[.ns[.svc[.cluster.local]]]` names."""
        parts = host.split(".")
        svc_name, ns = parts[0], (parts[1] if len(parts) > 1 else namespace)
        if len(parts) > 2 and parts[2:] not in (["svc"], ["svc", "cluster", "local"]):
            return None, None
        svc = self.find("Service", svc_name, ns)
        if svc is None:
            return None, None
        for g in self.groups:
            if svc in g.services:
                return svc, g
        return svc, None

    def call_bound(self, g: Group) -> float:
        """The longest call this group may have in flight, from its config and its callers'."""
        bound = 0.0
        webhook = (g.effective.get("agents") or {}).get("webhook", {})
        if webhook.get("enabled"):
            bound = max(bound, parse_duration(webhook.get("max_timeout", "300s")))
        for grp in (g.effective.get("groups") or {}).values():
            for op, t in (grp.get("timeouts") or {}).items():
                if op not in ("connect", "metadata"):
                    bound = max(bound, parse_duration(t))
        for caller in self.groups:
            for grp in (caller.effective.get("groups") or {}).values():
                for ep in grp.get("endpoints", []):
                    _, target = self.group_by_host(url_host_port(ep["url"])[0], caller.deployment.namespace)
                    if target is g:
                        for op, t in (grp.get("timeouts") or {}).items():
                            if op not in ("connect", "metadata"):
                                bound = max(bound, parse_duration(t))
        return bound

    def check_grace_periods(self) -> None:
        for g in self.groups:
            grace = g.pod.get("terminationGracePeriodSeconds", 30)
            pre_stop = (g.container.get("lifecycle", {}).get("preStop", {}).get("sleep", {}) or {}).get("seconds", 0)
            bound = self.call_bound(g)
            if grace <= pre_stop + bound:
                self.problem(f"{g.deployment.ref}: terminationGracePeriodSeconds {grace} <= preStop {pre_stop}s + the "
                             f"longest call in flight {bound:g}s: calls would be killed during a rollout")
            drain = parse_duration(g.effective.get("server", {}).get("drain_timeout", "20s"))
            if drain < bound:
                self.problem(f"{g.config_file}: [server] drain_timeout {drain:g}s < the longest call in flight "
                             f"{bound:g}s: such calls would be ended UNAVAILABLE during a rollout")
            # Tern's shutdown takes at most drain_timeout + 3 s (docs/gateway.md, Shutdown).
            if grace <= pre_stop + drain + 3:
                self.problem(f"{g.deployment.ref}: terminationGracePeriodSeconds {grace} <= preStop {pre_stop}s + "
                             f"drain_timeout {drain:g}s + 3s: the kubelet would kill Tern mid-drain")

    def check_group_endpoints(self) -> None:
        for g in self.groups:
            routes = g.effective.get("routes") or []
            groups = g.effective.get("groups") or {}
            for route in routes:
                target = route.get("target", "")
                if target.startswith("group:") and target[6:] not in groups:
                    self.problem(f"{g.config_file}: route {route.get('name')} targets {target}, no such [groups] entry")
            for gname, grp in groups.items():
                routed = set()
                for route in routes:
                    if route.get("target") == f"group:{gname}":
                        tt = route.get("task_type")
                        routed.update([tt] if isinstance(tt, str) else (tt or []))
                for ep in grp.get("endpoints", []):
                    host, port, scheme = url_host_port(ep["url"])
                    svc, backend = self.group_by_host(host, g.deployment.namespace)
                    if svc is None:
                        self.problem(f"{g.config_file}: group {gname} endpoint {ep['url']}: no Service {host} in the kustomization")
                        continue
                    svc_ports = {p["port"]: p for p in svc.doc["spec"].get("ports", [])}
                    if port not in svc_ports:
                        self.problem(f"{g.config_file}: group {gname} endpoint {ep['url']}: Service {svc.name} has no port "
                                     f"{port} (it has {sorted(svc_ports)})")
                        continue
                    if backend is None:
                        continue
                    reached = backend.container_port(svc_ports[port].get("targetPort", port))
                    if reached != backend.server_port():
                        self.problem(f"{g.config_file}: group {gname} endpoint {ep['url']}: Service port {port} reaches "
                                     f"container port {reached}, not {backend.name}'s gRPC port {backend.server_port()}")
                    backend_tls = bool(backend.effective["server"].get("tls"))
                    if backend_tls != (scheme == "https"):
                        self.problem(f"{g.config_file}: group {gname} endpoint {ep['url']}: {backend.name} "
                                     f"{'uses' if backend_tls else 'does not use'} TLS")
                    missing = routed - backend.reachable_task_types()
                    if missing:
                        self.problem(f"{g.config_file}: group {gname} receives {sorted(missing)}, which {backend.name} does not serve")
                    tokens = (backend.effective.get("auth") or {}).get("tokens") or []
                    has_token = bool((grp.get("client") or {}).get("token"))
                    if tokens and not has_token:
                        self.problem(f"{g.config_file}: group {gname}: {backend.name} requires a bearer token, the group sends none")
                    if has_token and not any(t.get("name") == g.name for t in tokens):
                        self.problem(f"{g.config_file}: group {gname} sends a token, but {backend.name}'s [auth] has no "
                                     f"token named {g.name!r} (the convention pairing the two Secrets)")

    def check_network_policies(self) -> None:
        for np in self.of_kind("NetworkPolicy"):
            selector = np.doc["spec"].get("podSelector", {}).get("matchLabels", {})
            if not any(selector_matches(selector, pod_labels(d)) for d in self.of_kind("Deployment")):
                self.problem(f"{np.ref}: podSelector matches no Deployment of the kustomization")
                continue
            # Groups whose config could not be read are reported already.
            targets = [g for g in self.groups if selector_matches(selector, g.pod_labels)]
            for g in targets:
                allowed = {g.server_port(), g.metrics_port()}
                for rule in np.doc["spec"].get("ingress", []):
                    for p in rule.get("ports", []):
                        port = g.container_port(p.get("port"))
                        if port not in allowed:
                            self.problem(f"{np.ref}: admits port {p.get('port')}, which is not {g.name}'s gRPC or metrics port")
                    for peer in rule.get("from", []):
                        labels = (peer.get("podSelector") or {}).get("matchLabels") or {}
                        if labels.get("app.kubernetes.io/name") == "tern" and not any(
                                selector_matches(labels, pod_labels(d)) for d in self.of_kind("Deployment")):
                            self.problem(f"{np.ref}: admits pods {labels}, which no Deployment has")
                if g.server_port() not in {g.container_port(p.get("port")) for r in np.doc["spec"].get("ingress", [])
                                           for p in r.get("ports", [])}:
                    self.problem(f"{np.ref}: admits no one to {g.name}'s gRPC port {g.server_port()}")

    # -- FlytePropeller --------------------------------------------------------------------------------------------

    def check_propeller(self) -> None:
        path = self.deploy / "flyte" / "propeller-connector-service.yaml"
        ref = "deploy/flyte/propeller-connector-service.yaml"
        doc = yaml.safe_load(path.read_text()) or {}
        plugins = ((doc.get("tasks") or {}).get("task-plugins") or {}).get("enabled-plugins") or []
        if "connector-service" not in plugins:
            self.problem(f"{ref}: tasks.task-plugins.enabled-plugins does not contain connector-service")
        cs = (doc.get("plugins") or {}).get("connector-service")
        if not isinstance(cs, dict):
            self.problem(f"{ref}: no plugins.connector-service")
            return
        known = {"defaultConnector", "connectors", "connectorForTaskTypes", "supportedTaskTypes", "pollInterval",
                 "webApi", "resourceConstraints"}
        for key in cs:
            if key not in known:
                self.problem(f"{ref}: plugins.connector-service.{key} is not a key of the connector plugin")
        deployments = {"defaultConnector": cs.get("defaultConnector")}
        for name, d in (cs.get("connectors") or {}).items():
            deployments[f"connectors.{name}"] = d
        if not deployments["defaultConnector"]:
            self.problem(f"{ref}: no defaultConnector")
            del deployments["defaultConnector"]
        targets: Dict[str, Group] = {}
        for key, d in deployments.items():
            g = self.check_propeller_deployment(ref, key, d or {})
            if g is not None:
                targets[key] = g
        for task_type, connector in (cs.get("connectorForTaskTypes") or {}).items():
            if connector not in (cs.get("connectors") or {}):
                self.problem(f"{ref}: connectorForTaskTypes.{task_type} names {connector!r}, not a key of connectors")
                continue
            if task_type in SYNC_TASK_TYPES:
                self.problem(f"{ref}: connectorForTaskTypes.{task_type}: {task_type} is synchronous, and propeller calls "
                             "CreateTask for mapped types (IsSync=false); leave it to discovery")
            g = targets.get(f"connectors.{connector}")
            if g is not None and task_type not in g.reachable_task_types():
                self.problem(f"{ref}: connectorForTaskTypes.{task_type} -> {connector}: {g.name} neither serves nor routes it")

    def check_propeller_deployment(self, ref: str, key: str, d: dict) -> Optional[Group]:
        endpoint = str(d.get("endpoint", ""))
        m = (re.fullmatch(r"k8s://(?P<svc>[^./:]+)\.(?P<ns>[^./:]+):(?P<port>\d+)", endpoint)
             or re.fullmatch(r"k8s:///(?P<svc>[^./:]+)\.(?P<ns>[^./:]+):(?P<port>\d+)", endpoint)
             or re.fullmatch(r"dns:///(?P<svc>[^./:]+)\.(?P<ns>[^./:]+)(?:\.svc(?:\.cluster\.local)?)?:(?P<port>\d+)", endpoint))
        if not m:
            self.problem(f"{ref}: {key}.endpoint {endpoint!r} is not k8s://<service>.<namespace>:<port> or dns:///<service>.<namespace>.svc.cluster.local:<port>")
            return None
        svc = self.find("Service", m["svc"], m["ns"])
        if svc is None:
            self.problem(f"{ref}: {key}.endpoint {endpoint}: no Service {m['svc']} in namespace {m['ns']} in deploy/kubernetes")
            return None
        g = next((g for g in self.groups if svc in g.services), None)
        if g is None:
            return None
        port = int(m["port"])
        if port != g.server_port():
            self.problem(f"{ref}: {key}.endpoint {endpoint}: port {port} is not {g.name}'s gRPC port {g.server_port()} "
                         "([server] addr; the k8s:// resolver dials pod IPs on the endpoint's port)")
        if port not in {p["port"] for p in svc.doc["spec"].get("ports", [])}:
            self.problem(f"{ref}: {key}.endpoint {endpoint}: Service {svc.name} has no port {port}")
        tls = bool(g.effective["server"].get("tls"))
        if d.get("insecure", True) == tls:
            self.problem(f"{ref}: {key}.insecure is {d.get('insecure', True)} but {g.name} "
                         f"{'serves TLS' if tls else 'serves plaintext'}")
        if (g.effective.get("auth") or {}).get("tokens"):
            self.problem(f"{ref}: {key} points at {g.name}, which requires bearer tokens; propeller's connector plugin sends none")
        try:
            service_config = json.loads(d.get("defaultServiceConfig", ""))
            policies = [next(iter(p)) for p in service_config.get("loadBalancingConfig", [])]
        except (ValueError, StopIteration, AttributeError):
            policies = []
        if "round_robin" not in policies:
            self.problem(f"{ref}: {key}.defaultServiceConfig does not select round_robin (calls would stick to one pod)")
        timeouts = d.get("timeouts") or {}
        for op in timeouts:
            if op not in PROPELLER_TIMEOUT_OPS:
                self.problem(f"{ref}: {key}.timeouts.{op} is not an op the connector plugin reads ({sorted(PROPELLER_TIMEOUT_OPS)})")
        try:
            default = parse_duration(d.get("defaultTimeout", "10s"))
            seconds = {op: parse_duration(t) for op, t in timeouts.items()}
        except ValueError as e:
            self.problem(f"{ref}: {key}: {e}")
            return g
        own = {"CreateTask": "create", "GetTask": "get", "DeleteTask": "delete", "ExecuteTaskSync": "execute_sync"}
        for op, tern_op in own.items():
            inner = [parse_duration(grp["timeouts"][tern_op]) for grp in (g.effective.get("groups") or {}).values()]
            if op == "ExecuteTaskSync" and g.effective.get("agents", {}).get("webhook", {}).get("enabled"):
                inner.append(parse_duration(g.effective["agents"]["webhook"]["max_timeout"]))
            if inner and seconds.get(op, default) <= max(inner):
                self.problem(f"{ref}: {key}.timeouts.{op} ({seconds.get(op, default):g}s) is not above {g.name}'s own "
                             f"limit ({max(inner):g}s): propeller would give up before the gateway answers")
        return g

    # -- Dockerfile ----------------------------------------------------------------------------------------------

    def check_dockerfile(self) -> None:
        df = self.dockerfile
        ref = "deploy/Dockerfile"
        if df is None:
            self.problem(f"{ref}: missing")
            return
        if len(df.stages) < 2:
            self.problem(f"{ref}: not a multi-stage build ({len(df.stages)} stage)")
            return
        for stage in df.stages:
            image = stage.image
            tag = image.split("/")[-1].partition(":")[2]
            # distroless publishes no version tags (only latest/nonroot/debug): pinned by digest where it is pushed.
            distroless = image.startswith("gcr.io/distroless/") and tag in ("nonroot", "latest")
            if "@sha256:" not in image and not distroless and not re.search(r"\d", tag):
                self.problem(f"{ref}: FROM {image} is not pinned (a version tag or a digest)")
        builder = next((s for s in df.stages if s.image.startswith("rust:")), None)
        runtime = df.stages[-1]
        if builder is None:
            self.problem(f"{ref}: no Rust builder stage (FROM rust:<version>-<debian>)")
            return
        m = re.fullmatch(r"rust:(\d+\.\d+(?:\.\d+)?)-(\w+)", builder.image)
        if not m:
            self.problem(f"{ref}: builder FROM {builder.image} is not rust:<version>-<debian release>")
        else:
            cargo = tomllib.loads((self.repo / "Cargo.toml").read_text())
            msrv = cargo.get("workspace", {}).get("package", {}).get("rust-version", "0")
            if tuple(map(int, m[1].split(".")[:2])) < tuple(map(int, msrv.split(".")[:2])):
                self.problem(f"{ref}: rust {m[1]} is older than the workspace's rust-version {msrv}")
            debian = {"bookworm": "12", "trixie": "13", "bullseye": "11"}.get(m[2])
            if debian and not (f"debian{debian}" in runtime.image or m[2] in runtime.image):
                self.problem(f"{ref}: builder is Debian {m[2]} but the runtime {runtime.image} is another release "
                             "(glibc/libstdc++ must match)")
        # The agents: TERN_FEATURES.
        cargo = tomllib.loads((self.repo / "Cargo.toml").read_text())
        features = set(cargo.get("features", {}))
        arg = builder.args.get("TERN_FEATURES")
        if arg is None:
            self.problem(f"{ref}: the builder stage has no ARG TERN_FEATURES")
        else:
            chosen = [f for f in arg.split(",") if f]
            for f in chosen:
                if f not in features:
                    self.problem(f"{ref}: TERN_FEATURES default names {f!r}, not a feature of Cargo.toml ({sorted(features)})")
            unsafe = set(chosen) - SAFE_FEATURES
            if unsafe:
                self.problem(f"{ref}: TERN_FEATURES default compiles in {sorted(unsafe)}, beyond the set `tern serve` "
                             "exposes safely; leave it to an explicit --build-arg")
            readme = self.deploy / "README.md"
            if readme.is_file() and f"Default: `{arg}`" not in " ".join(readme.read_text().split()):
                self.problem(f"deploy/README.md: does not state the image's default agents as the Dockerfile's "
                             f"TERN_FEATURES default (expected \"Default: `{arg}`\")")
        build = [r for r in builder.runs if "cargo build" in r.text]
        if not build:
            self.problem(f"{ref}: the builder never runs cargo build")
        else:
            text = build[0].text
            for needle in ("--release", "--locked", "--no-default-features", "--features", "TERN_FEATURES", "--bin tern"):
                if needle not in text:
                    self.problem(f"{ref}: cargo build lacks {needle}")
            mounts = build[0].cache_targets
            if not any("cargo/registry" in t for t in mounts):
                self.problem(f"{ref}: cargo build has no BuildKit cache mount for the cargo registry")
            if not any(t.rstrip("/").endswith("target") for t in mounts):
                self.problem(f"{ref}: cargo build has no BuildKit cache mount for the target directory")
        # libduckdb: DUCKDB_LIB_DIR from the npm package of the pinned release, copied next to the binary.
        if builder.env.get("DUCKDB_LIB_DIR") is None and "npm" not in " ".join(r.text for r in builder.runs):
            self.problem(f"{ref}: libduckdb is neither given through DUCKDB_LIB_DIR nor fetched with npm in the builder")
        release = re.search(r'const NPM_RELEASE: &str = "([^"]+)"', (self.repo / "agents/duckdb/build.rs").read_text())
        npm_args = [s.args.get("DUCKDB_NPM_RELEASE") for s in df.stages if "DUCKDB_NPM_RELEASE" in s.args]
        if release and npm_args and npm_args[0] != release[1]:
            self.problem(f"{ref}: DUCKDB_NPM_RELEASE {npm_args[0]} != NPM_RELEASE {release[1]} of agents/duckdb/build.rs")
        copies = [c for c in runtime.copies if c.source_stage == builder.name]
        binary_dirs = []
        for c in copies:
            src = c.src.rstrip("/")
            if build and f"{src}/tern" in build[0].text and f"{src}/libduckdb.so" in build[0].text:
                binary_dirs.append(c.dest.rstrip("/"))
        if not binary_dirs:
            self.problem(f"{ref}: the runtime stage does not copy tern and libduckdb.so into one directory "
                         "(the binary finds the library through its $ORIGIN rpath)")
        elif not runtime.env.get("PATH", "").startswith(binary_dirs[0]):
            self.problem(f"{ref}: {binary_dirs[0]} (tern) is not first on the runtime PATH")
        # Runtime.
        if runtime.runs:
            self.problem(f"{ref}: the runtime stage runs commands (RUN needs a shell; the image should need none)")
        user = runtime.user
        if user is None or user.split(":")[0] in ("", "0", "root"):
            self.problem(f"{ref}: the runtime stage's USER is {user!r}: run as a non-root user")
        elif not user.split(":")[0].isdigit():
            self.problem(f"{ref}: USER {user} is a name: use the numeric uid so Kubernetes can verify runAsNonRoot")
        if runtime.entrypoint != ["tern", "serve"]:
            self.problem(f"{ref}: ENTRYPOINT is {runtime.entrypoint!r}, expected exec form [\"tern\", \"serve\"]")
        cmd = runtime.cmd or []
        if cmd[:1] != ["--config"] or len(cmd) != 2:
            self.problem(f"{ref}: CMD is {cmd!r}, expected [\"--config\", \"<path>\"]")
        else:
            if not any(c.dest == cmd[1] and c.source_stage is None for c in runtime.copies):
                self.problem(f"{ref}: the runtime stage does not COPY a default configuration to {cmd[1]}")
        # EXPOSE: the ports of the image's default config and of every group.
        default = tomllib.loads((self.deploy / "tern.toml").read_text())
        wanted = {addr_port(default["server"]["addr"])[1]}
        if default.get("metrics", {}).get("addr"):
            wanted.add(addr_port(default["metrics"]["addr"])[1])
        for g in self.groups:
            wanted.add(g.server_port())
            if g.metrics_port() is not None:
                wanted.add(g.metrics_port())
        if set(runtime.expose) != wanted:
            self.problem(f"{ref}: EXPOSE {sorted(runtime.expose)} != the configured ports {sorted(wanted)} "
                         "(deploy/tern.toml and the ConfigMaps' [server] / [metrics] addr)")
        result = subprocess.run([str(self.tern_bin), "config", "show", "--json", "--config", str(self.deploy / "tern.toml")],
                                cwd=self.workdir, env={k: v for k, v in os.environ.items() if not k.startswith("TERN_")},
                                capture_output=True, text=True, timeout=60)
        if result.returncode != 0:
            self.problem(f"deploy/tern.toml: `tern config show` refuses it: {result.stderr.strip()}")
            return
        # The real binary's word on SAFE_FEATURES: with the image's default configuration, `tern serve` serves
        # every agent the default build compiles in (an agent it leaves off would need an explicit opt-in). An
        # agent the binary under test lacks cannot be judged here.
        agents = json.loads(result.stdout).get("agents", {})
        for feature in (builder.args.get("TERN_FEATURES") or "").split(","):
            name = feature.removeprefix("agent-")
            if feature.startswith("agent-") and name in agents and agents[name].get("enabled") is not True:
                self.problem(f"{ref}: TERN_FEATURES default compiles in {feature}, but `tern serve` with deploy/tern.toml "
                             f"does not serve {name} without an explicit opt-in")

    def check_commented_examples(self) -> None:
        """The commented-out example sections (`#[agents.x]`, `#key = value`) of deploy/tern.toml and of every
        ConfigMap, uncommented, must pass `tern config show`, and every agent they name must be served."""
        sources = [("deploy/tern.toml", (self.deploy / "tern.toml").read_text())]
        sources += [(g.config_file, g.config_text) for g in self.groups]
        for i, (ref, text) in enumerate(sources):
            live = uncomment_examples(text)
            if live == text:
                continue
            path = self.workdir / f"examples-{i}.toml"
            path.write_text(live)
            env = {k: v for k, v in os.environ.items() if not k.startswith("TERN_")}
            result = subprocess.run([str(self.tern_bin), "config", "show", "--json", "--config", str(path)],
                                    cwd=self.workdir, env=env, capture_output=True, text=True, timeout=60)
            if result.returncode != 0:
                self.problem(f"{ref}: its commented example sections, uncommented, are refused by `tern config show`: "
                             f"{result.stderr.strip()}")
                continue
            agents = json.loads(result.stdout).get("agents", {})
            for name in re.findall(r"^\s*#\[agents\.([A-Za-z0-9_-]+)\]", text, re.M):
                if name in agents and agents[name].get("enabled") is not True:
                    self.problem(f"{ref}: its commented [agents.{name}] example, uncommented, would not be served")

    def check_dockerignore(self) -> None:
        path = self.repo / ".dockerignore"
        if not path.is_file():
            self.problem(".dockerignore: missing (the whole repository, target/ included, would be sent as context)")
            return
        rules = DockerIgnore(path.read_text())
        for excluded in ("target/debug/tern", ".git/HEAD"):
            if not rules.excluded(excluded):
                self.problem(f".dockerignore: does not exclude {excluded}")
        cargo = tomllib.loads((self.repo / "Cargo.toml").read_text())
        needed = ["Cargo.toml", "Cargo.lock", "build.rs", "src/main.rs", "deploy/tern.toml"]
        needed += [f"benches/{b['name']}.rs" for b in cargo.get("bench", [])]
        for member in cargo.get("workspace", {}).get("members", []):
            needed.append(f"{member}/Cargo.toml")
            needed.append(f"{member}/src/lib.rs")
            for extra in ("build.rs", "migrations", "proto"):
                if (self.repo / member / extra).exists():
                    needed.append(f"{member}/{extra}/x" if (self.repo / member / extra).is_dir() else f"{member}/{extra}")
        for p in needed:
            if rules.excluded(p):
                self.problem(f".dockerignore: excludes {p}, which the image build needs")


EXAMPLE_LINE = re.compile(r"^(\s*)#(\[|[a-z_]+ = )", re.M)


def uncomment_examples(text: str) -> str:
    """Example lines are commented without a space (`#[agents.x]`, `#key = value`); prose has one (`# ...`)."""
    return EXAMPLE_LINE.sub(r"\1\2", text)


def url_host_port(url: str) -> Tuple[str, int, str]:
    scheme, _, rest = url.rpartition("://")
    hostport = rest.split("/")[0]
    host, port = addr_port(hostport) if ":" in hostport else (hostport, 443 if scheme == "https" else 80)
    return host, port, scheme or "http"


# ------------------------------------------------------------------------------------------------------------
# Dockerfile and .dockerignore parsing (enough for these checks; Docker itself is not available here)
# ------------------------------------------------------------------------------------------------------------


@dataclass
class Run:
    text: str
    cache_targets: List[str]


@dataclass
class Copy:
    src: str
    dest: str
    source_stage: Optional[str]


@dataclass
class Stage:
    image: str
    name: str
    args: Dict[str, str] = field(default_factory=dict)
    env: Dict[str, str] = field(default_factory=dict)
    runs: List[Run] = field(default_factory=list)
    copies: List[Copy] = field(default_factory=list)
    expose: List[int] = field(default_factory=list)
    user: Optional[str] = None
    entrypoint: Optional[List[str]] = None
    cmd: Optional[List[str]] = None


@dataclass
class Dockerfile:
    stages: List[Stage]

    @property
    def cmd(self) -> Optional[List[str]]:
        return self.stages[-1].cmd if self.stages else None

    @staticmethod
    def instructions(text: str) -> List[Tuple[str, str]]:
        out, current = [], ""
        for line in text.splitlines():
            stripped = line.strip()
            if not current and (not stripped or stripped.startswith("#")):
                continue
            if current and stripped.startswith("#"):
                continue  # comment lines inside a continued instruction
            if stripped.endswith("\\"):
                current += stripped[:-1] + " "
                continue
            current += stripped
            word, _, rest = current.partition(" ")
            out.append((word.upper(), rest.strip()))
            current = ""
        return out

    @classmethod
    def parse(cls, path: Path) -> Optional["Dockerfile"]:
        if not path.is_file():
            return None
        stages: List[Stage] = []
        for word, rest in cls.instructions(path.read_text()):
            if word == "FROM":
                parts = [t for t in rest.split() if not t.startswith("--")]
                image = parts[0]
                name = parts[2] if len(parts) >= 3 and parts[1].upper() == "AS" else str(len(stages))
                stages.append(Stage(image=image, name=name))
                continue
            if not stages:
                continue
            st = stages[-1]
            if word == "ARG":
                key, _, value = rest.partition("=")
                st.args[key.strip()] = value.strip() if _ else None
            elif word == "ENV":
                for token in shlex.split(rest):
                    key, _, value = token.partition("=")
                    st.env[key] = value
            elif word == "RUN":
                targets = re.findall(r"--mount=type=cache,[^ ]*?target=([^, ]+)", rest)
                st.runs.append(Run(rest, targets))
            elif word == "COPY":
                tokens = rest.split()
                flags = [t for t in tokens if t.startswith("--")]
                paths = [t for t in tokens if not t.startswith("--")]
                stage = next((f.split("=", 1)[1] for f in flags if f.startswith("--from=")), None)
                for src in paths[:-1]:
                    st.copies.append(Copy(src, paths[-1], stage))
            elif word == "EXPOSE":
                st.expose += [int(p.split("/")[0]) for p in rest.split()]
            elif word == "USER":
                st.user = rest.strip()
            elif word in ("ENTRYPOINT", "CMD"):
                try:
                    value = json.loads(rest)
                except ValueError:
                    value = ["/bin/sh", "-c", rest]  # shell form: needs a shell
                if word == "ENTRYPOINT":
                    st.entrypoint = value
                else:
                    st.cmd = value
        return cls(stages)


class DockerIgnore:
    """.dockerignore semantics: patterns in order, the last match wins, `!` re-includes, a path is excluded when it
    or one of its parent directories matches; `**` matches any number of directories."""

    def __init__(self, text: str):
        self.rules: List[Tuple[bool, re.Pattern]] = []
        for line in text.splitlines():
            line = line.strip()
            if not line or line.startswith("#"):
                continue
            negate = line.startswith("!")
            pattern = line[1:] if negate else line
            self.rules.append((negate, re.compile(self.to_regex(pattern.strip("/")))))

    @staticmethod
    def to_regex(pattern: str) -> str:
        out, i = "", 0
        while i < len(pattern):
            if pattern.startswith("**/", i):
                out += "(?:.*/)?"
                i += 3
            elif pattern.startswith("**", i):
                out += ".*"
                i += 2
            elif pattern[i] == "*":
                out += "[^/]*"
                i += 1
            elif pattern[i] == "?":
                out += "[^/]"
                i += 1
            else:
                out += re.escape(pattern[i])
                i += 1
        return out + r"\Z"

    def excluded(self, path: str) -> bool:
        parts = path.split("/")
        prefixes = ["/".join(parts[: i + 1]) for i in range(len(parts))]
        state = False
        for negate, regex in self.rules:
            if negate:
                if regex.match(path):
                    state = False
            elif any(regex.match(p) for p in prefixes):
                state = True
        return state


def check(repo: Path, tern_bin: Path) -> List[str]:
    with tempfile.TemporaryDirectory(prefix="tern-deploy-check-") as tmp:
        return Checker(Path(repo), Path(tern_bin), Path(tmp)).run()


def load_groups(repo: Path, tern_bin: Path, workdir: Path) -> Checker:
    """A checker after a full run, for the live test: its groups carry their configs and effective configs."""
    Path(workdir).mkdir(parents=True, exist_ok=True)
    checker = Checker(Path(repo), Path(tern_bin), Path(workdir))
    checker.run()
    return checker
