"""The EventSource and Sensor programs, started the way argo-events v1.9.10's controller starts them.

The controller's Deployment for a Sensor (`pkg/reconciler/sensor/resource.go`) or an
EventSource (`pkg/reconciler/eventsource/resource.go`) runs `argo-events sensor-service`
/ `eventsource-service` with the environment
- `SENSOR_OBJECT` / `EVENTSOURCE_OBJECT`: base64 of the JSON of `{metadata: {namespace,
  name}, spec}` of the object,
- `EVENTBUS_SUBJECT`: `eventbus-<namespace>`, `POD_NAME`, `LEADER_ELECTION` (the
  object's `events.argoproj.io/leader-election` annotation),
- `EVENTBUS_CONFIG`: base64 of the JSON of the EventBus's `status.config`,
mounts the bus's client Secret at `/etc/eventbus/auth/auth.yaml` and every Secret the
object references at `/argo-events/secrets/<name>/<key>`, and runs as the pod's
ServiceAccount. Here the same, with these differences: the pod's ServiceAccount token
comes from a TokenRequest to the local API server and is written into a kubeconfig
(`KUBECONFIG`), the files are in the program's own root (`components.e2e.sandbox`), and
the API server and the bus are reached through relays at the same loopback ports.

Owns: building each program's box (root folder, files, kubeconfig, environment) and
starting it. Does not own: the namespaces and relays themselves (`sandbox`), the bus.
"""

from __future__ import annotations

import base64
import contextlib
import json
import os
import shutil
import signal
from pathlib import Path
from typing import Any

import yaml

from components.verify.apiserver import _Process, _start
from components.verify.client import ApiClient

PROJECT_DIR = Path(__file__).resolve().parents[2]
TOKEN_SECONDS = 3600
LEADER_ELECTION_ANNOTATION = "events.argoproj.io/leader-election"


class ProgramError(Exception):
    """A program could not be prepared (e.g. its ServiceAccount has no token)."""


def secret_refs(value: Any) -> set[tuple[str, str]]:
    """Every `{name, key}` Secret reference under ``value`` that argo-events mounts
    (fields such as webhookSecret, accessKey: a mapping holding exactly name and key,
    optionally `optional`)."""
    found: set[tuple[str, str]] = set()
    if isinstance(value, dict):
        keys = set(value) - {"optional"}
        if keys == {"name", "key"} and isinstance(value["name"], str) and isinstance(value["key"], str):
            found.add((value["name"], value["key"]))
        for item in value.values():
            found |= secret_refs(item)
    elif isinstance(value, list):
        for item in value:
            found |= secret_refs(item)
    return found


def service_account_token(client: ApiClient, namespace: str, account: str) -> str:
    """A token of ``namespace/account`` from the TokenRequest API (as the kubelet gets one for a pod)."""
    answer = client.call(
        "POST",
        f"/api/v1/namespaces/{namespace}/serviceaccounts/{account}/token",
        {"apiVersion": "authentication.k8s.io/v1", "kind": "TokenRequest",
         "spec": {"expirationSeconds": TOKEN_SECONDS}},
    )
    token = (answer.body.get("status") or {}).get("token") if answer.ok else None
    if not token:
        raise ProgramError(f"no token for ServiceAccount {namespace}/{account}: {answer.reason}")
    return str(token)


def kubeconfig(server: str, ca_pem: bytes, token: str) -> str:
    return yaml.safe_dump({
        "apiVersion": "v1",
        "kind": "Config",
        "clusters": [{"name": "local", "cluster": {
            "server": server, "certificate-authority-data": base64.b64encode(ca_pem).decode()}}],
        "users": [{"name": "pod", "user": {"token": token}}],
        "contexts": [{"name": "local", "context": {"cluster": "local", "user": "pod"}}],
        "current-context": "local",
    }, sort_keys=True)


def _kill(process: _Process) -> None:
    """SIGKILL to the whole process group, then reaped (no SIGTERM first: a crash, not a shutdown)."""
    with contextlib.suppress(ProcessLookupError):
        os.killpg(process.popen.pid, signal.SIGKILL)
    process.popen.wait()


def _b64json(value: Any) -> str:
    return base64.b64encode(json.dumps(value, separators=(",", ":")).encode()).decode()


class Program:
    """One Sensor or EventSource program in its box."""

    def __init__(self, kind: str, obj: dict[str, Any], folder: Path) -> None:
        self.kind = kind  # "Sensor" | "EventSource"
        self.obj = obj
        self.folder = folder
        self.root = folder / "root"
        self.webhook_socket = folder / "webhook.sock"
        self.process: _Process | None = None
        self.bus_config: dict[str, Any] = {}
        self.started_with: tuple[list[str], int, int, str] | None = None
        self.restarts = 0
        self.killed = False  # killed on purpose, until restarted

    def kill(self) -> None:
        """SIGKILL to the program's process group: a crash, no chance to ack or close anything."""
        assert self.process is not None
        self.killed = True
        _kill(self.process)

    def restart(self) -> None:
        """The same start again (the pod restarted: same box, token, bus); the new log is program-<n>.log."""
        assert self.started_with is not None
        self.restarts += 1
        self.start(*self.started_with, log=f"program-{self.restarts}.log")
        self.killed = False

    @property
    def name(self) -> str:
        return f"{self.kind} {self.obj['metadata']['namespace']}/{self.obj['metadata']['name']}"

    @property
    def account(self) -> str:
        template = (self.obj.get("spec") or {}).get("template") or {}
        return str(template.get("serviceAccountName") or "default")

    def prepare(self, binary: Path, kube: str, bus_auth: str, bus_config: dict[str, Any],
                secret_values: dict[tuple[str, str], str]) -> None:
        """The root folder: the binary, /tmp, the bus credentials, the referenced Secrets, the kubeconfig."""
        (self.root / "tmp").mkdir(parents=True)
        # /bin/argo-events: /argo-events is the folder of the mounted Secrets.
        (self.root / "bin").mkdir()
        target = self.root / "bin" / "argo-events"
        try:
            os.link(binary, target)
        except OSError:
            shutil.copy2(binary, target)
        auth = self.root / "etc" / "eventbus" / "auth"
        auth.mkdir(parents=True)
        (auth / "auth.yaml").write_text(bus_auth, encoding="utf-8")
        for name, key in sorted(secret_refs(self.obj.get("spec"))):
            value = secret_values.get((name, key))
            if value is None:
                continue  # not a Secret the server holds (the controller's pod would not start)
            folder = self.root / "argo-events" / "secrets" / name
            folder.mkdir(parents=True, exist_ok=True)
            (folder / key).write_text(value, encoding="utf-8")
        (self.root / "kubeconfig").write_text(kube, encoding="utf-8")
        self.bus_config = bus_config

    def spec(self, api_port: int, bus_port: int, pod_name: str) -> dict[str, Any]:
        meta = self.obj["metadata"]
        copy = {"metadata": {"namespace": meta["namespace"], "name": meta["name"]}, "spec": self.obj.get("spec")}
        object_var = "SENSOR_OBJECT" if self.kind == "Sensor" else "EVENTSOURCE_OBJECT"
        command = "sensor-service" if self.kind == "Sensor" else "eventsource-service"
        env = {
            object_var: _b64json(copy),
            "EVENTBUS_SUBJECT": f"eventbus-{meta['namespace']}",
            "POD_NAME": pod_name,
            "LEADER_ELECTION": (meta.get("annotations") or {}).get(LEADER_ELECTION_ANNOTATION, ""),
            "EVENTBUS_CONFIG": _b64json(self.bus_config),
            "KUBECONFIG": "/kubeconfig",
            "HOME": "/tmp",
        }
        return {
            "root": str(self.root),
            "argv": ["/bin/argo-events", command],
            "env": env,
            "tcp_to_unix": {str(api_port): str(self.folder.parent / "api.sock"),
                            str(bus_port): str(self.folder.parent / "bus.sock")},
            "unix_to_tcp": {str(self.webhook_socket): port for port in self.webhook_ports()[:1]},
        }

    def webhook_ports(self) -> list[int]:
        """The ports the EventSource's webhooks listen on (sorted, distinct)."""
        if self.kind != "EventSource":
            return []
        ports: set[int] = set()
        for source in ((self.obj.get("spec") or {}).get("github") or {}).values():
            port = ((source or {}).get("webhook") or {}).get("port")
            if port is not None and str(port).isdigit():
                ports.add(int(port))
        return sorted(ports)

    def start(self, argv: list[str], api_port: int, bus_port: int, pod_name: str, log: str = "program.log") -> None:
        self.started_with = (list(argv), api_port, bus_port, pod_name)
        spec_file = self.folder / "spec.json"
        spec_file.write_text(json.dumps(self.spec(api_port, bus_port, pod_name), sort_keys=True), encoding="utf-8")
        spec_file.chmod(0o600)
        env_path = str(PROJECT_DIR)
        previous = os.environ.get("PYTHONPATH")
        os.environ["PYTHONPATH"] = env_path if not previous else f"{env_path}{os.pathsep}{previous}"
        try:
            self.process = _start(self.name, [*argv, str(spec_file)], self.folder / log)
        finally:
            if previous is None:
                os.environ.pop("PYTHONPATH", None)
            else:
                os.environ["PYTHONPATH"] = previous
