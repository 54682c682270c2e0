"""One argo-events program in a box of its own: network namespace, file tree, relays.

Why a box: the programs are built for a pod. Each binds its metrics server to the fixed
port 7777 on every interface (argo-events v1.9.10 `v1alpha1.SensorMetricsPort` and
`EventSourceMetricsPort`; a bind failure is fatal), so two of them cannot share a
network; and they read the EventBus credentials and every referenced Secret from fixed
paths the controller mounts (`/etc/eventbus/auth/auth.yaml`,
`/argo-events/secrets/<name>/<key>`). So each program gets, as a pod does, its own
loopback (a new network namespace) and its own root (a chroot into a folder holding the
binary, those files and `/tmp`).

Owns: the helper that runs inside the namespace (`python -m components.e2e.sandbox
SPEC.json`: brings `lo` up, relays the API server's and the bus's ports from inside to
Unix sockets the host listens on, relays a Unix socket to the program's webhook port,
then runs the program chrooted and waits for it), the host side of those relays
(`UnixToTcp`), and the `argv` that starts the helper (`unshare`; a user namespace
is added when not root).

Does not own: what goes into the box (`components.e2e.programs`), stopping it (the
process group, `components.verify.apiserver._stop`).

The relays are hand-written on `socket` + threads: a few dozen lines, and a relay
library (socat, pproxy) would be a dependency for this alone.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import socket
import subprocess
import sys
import threading
from collections.abc import Callable
from pathlib import Path

BUFFER = 65536


def _pump(source: socket.socket, target: socket.socket) -> None:
    try:
        while data := source.recv(BUFFER):
            target.sendall(data)
    except OSError:
        pass
    finally:
        with contextlib.suppress(OSError):
            target.shutdown(socket.SHUT_WR)


def _splice(left: socket.socket, right: socket.socket) -> None:
    threads = [threading.Thread(target=_pump, args=pair, daemon=True) for pair in ((left, right), (right, left))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    left.close()
    right.close()


def _serve(listener: socket.socket, connect: Callable[[], socket.socket]) -> None:
    """Accept forever; each connection is spliced to a new one made by ``connect()``."""
    while True:
        try:
            client, _ = listener.accept()
        except OSError:
            return
        try:
            upstream = connect()
        except OSError:
            client.close()
            continue
        threading.Thread(target=_splice, args=(client, upstream), daemon=True).start()


def _tcp(port: int) -> socket.socket:
    return socket.create_connection(("127.0.0.1", port), timeout=30)


def _unix(path: str) -> socket.socket:
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    sock.connect(path)
    return sock


class UnixToTcp:
    """Host side: a Unix socket whose connections are relayed to 127.0.0.1:``port``."""

    def __init__(self, path: Path, port: int) -> None:
        self.path = path
        self.listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.listener.bind(str(path))
        self.listener.listen(128)
        threading.Thread(target=_serve, args=(self.listener, lambda: _tcp(port)), daemon=True).start()

    def close(self) -> None:
        with contextlib.suppress(OSError):
            self.listener.close()


def helper_argv(spec: Path) -> list[str]:
    """How the host starts the helper: in new network and mount namespaces (and a user
    namespace when not root, so `lo` can be brought up and the chroot made)."""
    argv = ["unshare", "--net", "--mount"]
    if os.geteuid() != 0:
        argv += ["--user", "--map-root-user"]
    return [*argv, sys.executable, "-m", "components.e2e.sandbox", str(spec)]


def _inside(spec: dict[str, object]) -> int:
    """Inside the namespaces: loopback up, relays, then the program chrooted."""
    subprocess.run(["ip", "link", "set", "lo", "up"], check=True)
    relays = spec["tcp_to_unix"]
    assert isinstance(relays, dict)
    for port, path in relays.items():
        listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        listener.bind(("127.0.0.1", int(port)))
        listener.listen(128)
        threading.Thread(target=_serve, args=(listener, lambda p=str(path): _unix(p)), daemon=True).start()
    exposed = spec.get("unix_to_tcp") or {}
    assert isinstance(exposed, dict)
    for path, port in exposed.items():
        listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        with contextlib.suppress(FileNotFoundError):
            os.unlink(path)
        listener.bind(str(path))
        listener.listen(128)
        threading.Thread(target=_serve, args=(listener, lambda p=int(port): _tcp(p)), daemon=True).start()
    root = str(spec["root"])
    argv = spec["argv"]
    env = spec["env"]
    assert isinstance(argv, list) and isinstance(env, dict)

    def enter_root() -> None:
        os.chroot(root)
        os.chdir("/")

    child = subprocess.Popen([str(a) for a in argv], env={str(k): str(v) for k, v in env.items()},
                             preexec_fn=enter_root)  # the chroot must happen in the child

    def forward(signum: int, _frame: object) -> None:
        with contextlib.suppress(ProcessLookupError):
            child.send_signal(signum)

    signal.signal(signal.SIGTERM, forward)
    signal.signal(signal.SIGINT, forward)
    return child.wait()


if __name__ == "__main__":
    sys.exit(_inside(json.loads(Path(sys.argv[1]).read_text(encoding="utf-8"))))
