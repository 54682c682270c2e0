"""Fake HTTP services on 127.0.0.1 and running a script for real, for tests/test_scripts_*.py.

Owns:
- ``Request``: what a fake received (method, path, lower-cased headers, raw body).
- ``TrickleServer``: a server on 127.0.0.1 that answers every connection one byte at a
  time, slowly (a per-read socket timeout never fires; only a deadline ends the call).
- ``FakeServer``: a ``ThreadingHTTPServer`` on a free port in a daemon thread. A
  subclass lists the HTTP ``methods`` it serves (others get the stock 501) and
  answers each request in ``answer(request)`` with ``(status, body)``, a body being
  sent as JSON (``content_type``), or ``(status, bytes, content_type)``, or
  ``(status, bytes, content_type, headers)``.
- ``servers(factory)``: the body of a fixture that starts fakes on demand
  (``start(*args)``) and closes every one afterwards.
- ``fake_ssh(bin_dir, root, ...)``: an ``ssh`` stand-in that records each call (argv, the
  key file's mode and text, its pid) and serves git from ``root``; it can fail its first
  calls as a network would, or hang (a fetch that never ends).
- ``run_script(name, env)``: ``scripts/<name>.py`` as a subprocess with exactly ``env``.
- ``git(cwd, *args)``: git with a fixed identity and no system config, for fake remotes.
- ``base_env(tmp_path)`` and ``aws_env(tmp_path, secret_key)``: the environment every
  script run starts from, and the one for a script that talks to AWS through botocore.

The scripts are run, never imported here: their interface is their environment.
"""

from __future__ import annotations

import contextlib
import json
import os
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any, Generic, TypeVar

ROOT = Path(__file__).resolve().parent.parent
SCRIPTS = ROOT / "scripts"

Reply = tuple[int, Any] | tuple[int, bytes, str] | tuple[int, bytes, str, dict[str, str]]


@dataclass
class Request:
    method: str
    path: str
    headers: dict[str, str]
    body: bytes

    def json(self) -> Any:
        return json.loads(self.body)


class FakeServer:
    """An HTTP service on 127.0.0.1; subclasses answer in ``answer``."""

    methods: tuple[str, ...] = ("GET", "POST")
    content_type = "application/json"

    def __init__(self) -> None:
        fake = self

        class Handler(BaseHTTPRequestHandler):
            def dispatch(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                request = Request(
                    method=self.command,
                    path=self.path,
                    headers={k.lower(): v for k, v in self.headers.items()},
                    body=self.rfile.read(length) if length else b"",
                )
                reply = fake.answer(request)
                headers: dict[str, str] = {}
                if len(reply) == 4:
                    status, data, content_type, headers = reply
                elif len(reply) == 3:
                    status, data, content_type = reply
                else:
                    status, body = reply
                    data, content_type = json.dumps(body).encode(), fake.content_type
                self.send_response(status)
                for name, value in headers.items():
                    self.send_header(name, value)
                self.send_header("Content-Type", content_type)
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def log_message(self, *args: object) -> None:
                pass

        for method in self.methods:
            setattr(Handler, f"do_{method}", Handler.dispatch)
        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        threading.Thread(target=self.server.serve_forever, daemon=True).start()
        self.url = f"http://127.0.0.1:{self.server.server_port}"

    def answer(self, request: Request) -> Reply:
        raise NotImplementedError

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


class TrickleServer:
    """Reads each request's first bytes, then sends `reply` one byte every `interval` seconds."""

    REPLY = b'HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 2\r\n\r\n{}'

    def __init__(self, interval: float = 0.5, reply: bytes = REPLY) -> None:
        self.interval, self.reply = interval, reply
        self.connections = 0
        self.sock = socket.create_server(("127.0.0.1", 0))
        self.url = f"http://127.0.0.1:{self.sock.getsockname()[1]}"
        threading.Thread(target=self._serve, daemon=True).start()

    def _serve(self) -> None:
        while True:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            self.connections += 1
            threading.Thread(target=self._trickle, args=(conn,), daemon=True).start()

    def _trickle(self, conn: socket.socket) -> None:
        with conn:
            try:
                conn.recv(65536)
                for byte in self.reply:
                    time.sleep(self.interval)
                    conn.sendall(bytes([byte]))
            except OSError:
                pass

    def close(self) -> None:
        with contextlib.suppress(OSError):
            self.sock.shutdown(socket.SHUT_RDWR)
        self.sock.close()


F = TypeVar("F", bound=FakeServer)


class _Servers(Generic[F]):
    def __init__(self, factory: Callable[..., F]) -> None:
        self.factory = factory
        self.started: list[F] = []

    def __call__(self, *args: Any, **kwargs: Any) -> F:
        self.started.append(self.factory(*args, **kwargs))
        return self.started[-1]


def servers(factory: Callable[..., F]) -> Iterator[Callable[..., F]]:
    """Fixture body: ``yield from servers(FakeX)`` gives ``start(...)``; all are closed after the test."""
    start = _Servers(factory)
    yield start
    for server in start.started:
        server.close()


GIT_ID = {
    "GIT_AUTHOR_NAME": "Dev",
    "GIT_AUTHOR_EMAIL": "dev@example.com",
    "GIT_COMMITTER_NAME": "Dev",
    "GIT_COMMITTER_EMAIL": "dev@example.com",
}


def git(cwd: Path, *args: str) -> str:
    """``git ARGS`` in ``cwd`` (also its HOME), as Dev, without system config; its stdout, stripped."""
    env = {**os.environ, "GIT_CONFIG_NOSYSTEM": "1", "HOME": str(cwd), **GIT_ID}
    return subprocess.run(["git", *args], cwd=cwd, env=env, check=True, capture_output=True, text=True).stdout.strip()


FAKE_SSH = r'''#!{python}
"""Stand-in for ssh: record the call, maybe fail or hang, then serve git from the root."""
import json, os, stat, sys, time
args = sys.argv[1:]
call = {{"args": args, "pid": os.getpid()}}
if "-i" in args:
    key = args[args.index("-i") + 1]
    call |= {{"key": key, "key_mode": stat.S_IMODE(os.stat(key).st_mode), "key_text": open(key).read()}}
with open({calls!r}, "a") as handle:
    handle.write(json.dumps(call) + "\n")
count = sum(1 for _ in open({calls!r}))
if count <= {fail_first}:
    print("kex_exchange_identification: read: Connection reset by peer", file=sys.stderr)
    sys.exit(255)
if {hang}:
    time.sleep(60)
os.chdir({root!r})
os.execvp("sh", ["sh", "-c", args[-1]])
'''


def fake_ssh(bin_dir: Path, root: Path, *, fail_first: int = 0, hang: bool = False) -> Path:
    """Write ``bin_dir/ssh``; each call appends a JSON line to ``bin_dir/ssh-calls.jsonl`` (see ``ssh_calls``)."""
    bin_dir.mkdir(parents=True, exist_ok=True)
    script = bin_dir / "ssh"
    calls = bin_dir / "ssh-calls.jsonl"
    script.write_text(FAKE_SSH.format(python=sys.executable, calls=str(calls), root=str(root),
                                      fail_first=fail_first, hang=hang))
    script.chmod(0o755)
    return script


def ssh_calls(bin_dir: Path) -> list[dict[str, Any]]:
    calls = bin_dir / "ssh-calls.jsonl"
    return [json.loads(line) for line in calls.read_text().splitlines()] if calls.exists() else []


def base_env(tmp_path: Path) -> dict[str, str]:
    return {"PATH": os.environ["PATH"], "HOME": str(tmp_path)}


def aws_env(tmp_path: Path, secret_key: str) -> dict[str, str]:
    """Test credentials, no config or metadata service, two attempts, outputs in tmp_path/outputs."""
    return base_env(tmp_path) | {
        "OUTPUT_DIR": str(tmp_path / "outputs"),
        "AWS_ACCESS_KEY_ID": "AKIDTESTTESTTEST",
        "AWS_SECRET_ACCESS_KEY": secret_key,
        "AWS_CONFIG_FILE": str(tmp_path / "no-aws-config"),
        "AWS_SHARED_CREDENTIALS_FILE": str(tmp_path / "no-aws-credentials"),
        "AWS_EC2_METADATA_DISABLED": "true",
        "AWS_MAX_ATTEMPTS": "2",
        "AWS_RETRY_MODE": "standard",
    }


def run_script(name: str, env: dict[str, str], timeout: float = 60) -> subprocess.CompletedProcess[str]:
    """``python scripts/<name>.py`` with exactly ``env``; never raises on the exit code."""
    return subprocess.run(
        [sys.executable, str(SCRIPTS / f"{name}.py")],
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )
