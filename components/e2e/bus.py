"""The EventBus stand-in: one `nats-server` with JetStream and the credentials the controller makes.

What argo-events v1.9.10's controller does for a JetStream EventBus
(`pkg/reconciler/eventbus/installer/jetstream.go`), and what is done here instead:
- it creates the Secret `eventbus-<bus>-js-client-auth` whose key `client-auth` is
  `username: <random>\\npassword: <random>`, and a server config whose account `js`
  (JetStream enabled) has that one user and whose system account `sys` has its own user:
  the same accounts and users are written here, with fresh random passwords, and the
  client Secret is applied to the local API server under the same name;
- the bus config it hands the programs (`EventBus.status.config.jetstream`) is
  `{url, accessSecret: {name, key}, streamConfig}`; `streamConfig` is the chart's default
  (`configs.jetstream.streamConfig` of the argo-events chart values) merged with the
  EventBus's own `spec.jetstream.streamConfig`, written as viper writes it (lower-case
  keys). Here: the same, except `replicas: 1` (one server, not a 3-node cluster: a
  single server refuses a replicated stream).
- the real bus serves TLS with a certificate of its own CA (the programs dial it with
  `InsecureSkipVerify`, since the controller puts no TLS config into the bus config, and
  refuse a server without TLS): this one too, with a CA and certificate made here
  (`components.verify.apiserver.make_pki`).

Owns: the server's config file, its start (own process group) and readiness, the
client Secret, the bus config. Does not own: starting the programs that use it.
"""

from __future__ import annotations

import json
import secrets
import socket
import time
from pathlib import Path
from typing import Any

import yaml

from components.verify.apiserver import _Process, _start, free_port, make_pki

CLIENT_AUTH_KEY = "client-auth"  # v1alpha1.JetStreamClientAuthSecretKey
# The argo-events chart's default configs.jetstream.streamConfig (chart 2.4.x, app v1.9.10).
CHART_STREAM_CONFIG: dict[str, Any] = {
    "maxMsgs": 1000000,
    "maxAge": "72h",
    "maxBytes": "1GB",
    "replicas": 3,
    "duplicates": "300s",
    "retention": 0,
    "discard": 0,
}
READY_TIMEOUT = 30.0


def client_secret_name(bus: str) -> str:
    return f"eventbus-{bus}-js-client-auth"


class Bus:
    """A running nats-server and what the programs need to reach it."""

    def __init__(self, binary: Path, folder: Path, bus: dict[str, Any]) -> None:
        self.binary = binary
        self.folder = folder
        self.bus = bus
        self.user = secrets.token_hex(4)
        self.password = secrets.token_hex(8)
        self.port = free_port()
        self.process: _Process | None = None
        self.restarts = 0

    @property
    def name(self) -> str:
        return str(self.bus["metadata"]["name"])

    @property
    def namespace(self) -> str:
        return str(self.bus["metadata"]["namespace"])

    def auth_yaml(self) -> str:
        return f"username: {self.user}\npassword: {self.password}"

    def client_secret(self) -> dict[str, Any]:
        return {
            "apiVersion": "v1",
            "kind": "Secret",
            "metadata": {"name": client_secret_name(self.name), "namespace": self.namespace},
            "type": "Opaque",
            "stringData": {CLIENT_AUTH_KEY: self.auth_yaml()},
        }

    def stream_config(self) -> str:
        merged = dict(CHART_STREAM_CONFIG)
        own = ((self.bus.get("spec") or {}).get("jetstream") or {}).get("streamConfig")
        if isinstance(own, str) and own.strip():
            loaded = yaml.safe_load(own)
            if isinstance(loaded, dict):
                merged.update(loaded)
        merged["replicas"] = 1
        return yaml.safe_dump({str(k).lower(): v for k, v in merged.items()}, sort_keys=True)

    def config(self, url: str) -> dict[str, Any]:
        """`EventBus.status.config` as the controller would write it, with ``url`` the programs dial."""
        return {
            "jetstream": {
                "url": url,
                "accessSecret": {"name": client_secret_name(self.name), "key": CLIENT_AUTH_KEY},
                "streamConfig": self.stream_config(),
            }
        }

    def start(self) -> None:
        store = self.folder / "jetstream"
        store.mkdir()
        pki = self.folder / "bus-pki"
        pki.mkdir(mode=0o700)
        make_pki(pki)
        conf = self.folder / "nats.conf"
        sys_password = secrets.token_hex(12)
        # The accounts of the controller's assets/jetstream/server-auth.conf; JetStream
        # settings of its nats-js.conf (maxMemoryStore/maxFileStore -1: unlimited).
        conf.write_text(
            "\n".join([
                f"listen: 127.0.0.1:{self.port}",
                "jetstream {",
                f'  store_dir: "{store}"',
                "  max_memory_store: -1",
                "  max_file_store: -1",
                "}",
                "tls {",
                f'  cert_file: "{pki / "serving.crt"}"',
                f'  key_file: "{pki / "serving.key"}"',
                f'  ca_file: "{pki / "ca.crt"}"',
                "}",
                "system_account: sys",
                "accounts: " + json.dumps({  # NATS config reads JSON
                    "js": {"jetstream": True, "users": [{"user": self.user, "pass": self.password}]},
                    "sys": {"users": [{"user": "sys", "pass": sys_password}]},
                }, sort_keys=True),
                "",
            ]),
            encoding="utf-8",
        )
        conf.chmod(0o600)
        self._run(self.folder / "nats.log")

    def kill_and_restart(self, pause: float) -> None:
        """SIGKILL to nats-server (a crash), ``pause`` seconds, then the same server again on the same port, config
        and JetStream store (the pod's volume); the new log is nats-<n>.log."""
        from components.e2e.programs import _kill

        assert self.process is not None
        _kill(self.process)
        time.sleep(pause)
        self.restarts += 1
        self._run(self.folder / f"nats-{self.restarts}.log")

    def _run(self, log: Path) -> None:
        self.process = _start("nats-server", [str(self.binary), "-c", str(self.folder / "nats.conf")], log)
        deadline = time.monotonic() + READY_TIMEOUT
        while time.monotonic() < deadline:
            if self.process.popen.poll() is not None:
                raise RuntimeError(f"nats-server exited while starting:\n{self.process.tail()}")
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=2) as sock:
                    if sock.recv(5) == b"INFO ":  # TLS is negotiated after the plain INFO line
                        return
            except OSError:
                pass
            time.sleep(0.2)
        raise RuntimeError(f"nats-server not ready after {READY_TIMEOUT:.0f} s:\n{self.process.tail()}")
