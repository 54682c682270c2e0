"""A throw-away etcd and kube-apiserver on loopback, configured like an EKS control plane.

Owns: a temporary folder with a CA, the serving and admin client certificates and the
service-account signing key (made with `cryptography`); free loopback ports; starting
etcd and kube-apiserver each in its own process group; waiting until the API server is
ready (RBAC bootstrap roles included); and stopping both, always: on return, on an
exception and on SIGINT/SIGTERM (`LocalCluster` is a context manager, and the signal
handlers turn a signal into an exception that unwinds through it). Also owns the
API server's flags: which admission plugins run and how authorization is done.

Does not own: finding or building the binaries (`components.toolchain`), and anything
sent to the server (`components.verify.client` and the check modules).
"""

from __future__ import annotations

import contextlib
import datetime
import ipaddress
import os
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from types import FrameType

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.x509.oid import NameOID

from components.verify.client import ApiClient, ApiError

# The admission plugins an EKS control plane (1.30+) runs, as EKS documents them,
# spelt as kube-apiserver names them. PodSecurity and ValidatingAdmissionPolicy are
# the two the checks rely on; the others make defaulting and refusals match a real
# cluster (ServiceAccount refuses a pod whose ServiceAccount does not exist,
# NamespaceLifecycle an object in a missing namespace).
ADMISSION_PLUGINS = (
    "NamespaceLifecycle",
    "LimitRanger",
    "ServiceAccount",
    "DefaultStorageClass",
    "ResourceQuota",
    "DefaultTolerationSeconds",
    "NodeRestriction",
    "MutatingAdmissionWebhook",
    "ValidatingAdmissionWebhook",
    "PodSecurity",
    "TaintNodesByCondition",
    "StorageObjectInUseProtection",
    "PersistentVolumeClaimResize",
    "ExtendedResourceToleration",
    "CertificateApproval",
    "Priority",
    "CertificateSigning",
    "CertificateSubjectRestriction",
    "RuntimeClass",
    "DefaultIngressClass",
    "ClusterTrustBundleAttest",
    "ValidatingAdmissionPolicy",
)
# Kubernetes 1.34 serves admissionregistration.k8s.io/v1 ValidatingAdmissionPolicy by
# default (GA since 1.30): no feature gate or --runtime-config is needed.
SERVICE_CIDR = "10.96.0.0/16"  # never routed: the API server only allocates from it
ADMIN_USER = "release-pipeline-verify-admin"
START_TIMEOUT = 90.0
STOP_TIMEOUT = 10.0


class ClusterError(Exception):
    """The local control plane could not be started (the message says why, with its log tail)."""


def free_port() -> int:
    """A loopback port nobody listens on now (the kernel's choice)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


# --- certificates ---------------------------------------------------------------


def _name(common_name: str, org: str | None = None) -> x509.Name:
    parts = [x509.NameAttribute(NameOID.COMMON_NAME, common_name)]
    if org:
        parts.append(x509.NameAttribute(NameOID.ORGANIZATION_NAME, org))
    return x509.Name(parts)


def _write_key(path: Path, key: ec.EllipticCurvePrivateKey | rsa.RSAPrivateKey) -> None:
    path.write_bytes(
        key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    )
    path.chmod(0o600)


def make_pki(folder: Path) -> None:
    """CA, serving certificate (127.0.0.1, localhost), admin client certificate (group
    system:masters) and the service-account signing key pair, as PEM files in ``folder``."""
    now = datetime.datetime.now(datetime.UTC)
    start, end = now - datetime.timedelta(minutes=5), now + datetime.timedelta(days=1)
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca_name = _name("release-pipeline-verify-ca")
    ca = (
        x509.CertificateBuilder()
        .subject_name(ca_name)
        .issuer_name(ca_name)
        .public_key(ca_key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(start)
        .not_valid_after(end)
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .add_extension(
            x509.KeyUsage(True, False, False, False, False, True, True, False, False), critical=True
        )
        .sign(ca_key, hashes.SHA256())
    )
    (folder / "ca.crt").write_bytes(ca.public_bytes(serialization.Encoding.PEM))

    def leaf(stem: str, subject: x509.Name, usage: x509.ObjectIdentifier, sans: list[x509.GeneralName]) -> None:
        key = ec.generate_private_key(ec.SECP256R1())
        builder = (
            x509.CertificateBuilder()
            .subject_name(subject)
            .issuer_name(ca_name)
            .public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(start)
            .not_valid_after(end)
            .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
            .add_extension(x509.ExtendedKeyUsage([usage]), critical=False)
        )
        if sans:
            builder = builder.add_extension(x509.SubjectAlternativeName(sans), critical=False)
        cert = builder.sign(ca_key, hashes.SHA256())
        (folder / f"{stem}.crt").write_bytes(cert.public_bytes(serialization.Encoding.PEM))
        _write_key(folder / f"{stem}.key", key)

    leaf(
        "serving",
        _name("kube-apiserver"),
        x509.oid.ExtendedKeyUsageOID.SERVER_AUTH,
        [x509.DNSName("localhost"), x509.IPAddress(ipaddress.ip_address("127.0.0.1"))],
    )
    leaf("admin", _name(ADMIN_USER, "system:masters"), x509.oid.ExtendedKeyUsageOID.CLIENT_AUTH, [])
    sa_key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    _write_key(folder / "sa.key", sa_key)
    (folder / "sa.pub").write_bytes(
        sa_key.public_key().public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
    )


# --- processes ------------------------------------------------------------------


@dataclass
class _Process:
    name: str
    popen: subprocess.Popen[bytes]
    log: Path

    def tail(self, lines: int = 15) -> str:
        try:
            text = self.log.read_text(errors="replace").splitlines()
        except OSError:
            return ""
        return "\n".join(text[-lines:])


def _start(name: str, argv: list[str], log: Path) -> _Process:
    with log.open("wb") as out:
        # Its own session and process group: stopping it reaches anything it started,
        # and a Ctrl-C at the terminal goes to verify only, which then stops it in order.
        popen = subprocess.Popen(argv, stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                 start_new_session=True)
    return _Process(name, popen, log)


def _stop(process: _Process) -> None:
    """SIGTERM to the process group, SIGKILL after STOP_TIMEOUT; always reaped."""
    if process.popen.poll() is not None:
        return
    with contextlib.suppress(ProcessLookupError):
        os.killpg(process.popen.pid, signal.SIGTERM)
    try:
        process.popen.wait(STOP_TIMEOUT)
    except subprocess.TimeoutExpired:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.popen.pid, signal.SIGKILL)
        process.popen.wait()
    # The group may outlive its leader (a child it forked): make sure it is gone.
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(process.popen.pid, signal.SIGKILL)


class Interrupted(BaseException):
    """Raised from a signal handler, so `finally` blocks run before the exit."""

    def __init__(self, signum: int) -> None:
        super().__init__(f"signal {signum}")
        self.signum = signum


@contextlib.contextmanager
def stop_on_signals() -> Iterator[None]:
    """Within the block, SIGTERM/SIGINT/SIGHUP raise `Interrupted` (main thread only;
    elsewhere the block runs with the handlers it has)."""
    import threading

    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def handler(signum: int, frame: FrameType | None) -> None:
        raise Interrupted(signum)

    previous = {sig: signal.signal(sig, handler) for sig in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP)}
    try:
        yield
    finally:
        for sig, old in previous.items():
            signal.signal(sig, old)


class LocalCluster:
    """etcd + kube-apiserver in a temporary folder; use as ``with LocalCluster(...) as api:``."""

    def __init__(self, kube_apiserver: Path, etcd: Path, *, workdir: Path | None = None) -> None:
        self.kube_apiserver = kube_apiserver
        self.etcd = etcd
        self._parent = workdir
        self._processes: list[_Process] = []
        self.folder: Path | None = None
        self.port: int | None = None
        self.client: ApiClient | None = None

    @property
    def pids(self) -> list[int]:
        return [p.popen.pid for p in self._processes]

    def __enter__(self) -> ApiClient:
        self.folder = Path(tempfile.mkdtemp(prefix="release-pipeline-verify-", dir=self._parent))
        try:
            return self._start()
        except BaseException:
            self.stop()
            raise

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def _start(self) -> ApiClient:
        assert self.folder is not None
        make_pki(self.folder)
        etcd_data = self.folder / "etcd"
        etcd_data.mkdir(mode=0o700)
        client_port, peer_port = free_port(), free_port()
        etcd_url = f"http://127.0.0.1:{client_port}"
        self._processes.append(_start("etcd", [
            str(self.etcd),
            "--name=verify",
            f"--data-dir={etcd_data}",
            f"--listen-client-urls={etcd_url}",
            f"--advertise-client-urls={etcd_url}",
            f"--listen-peer-urls=http://127.0.0.1:{peer_port}",
            f"--initial-advertise-peer-urls=http://127.0.0.1:{peer_port}",
            f"--initial-cluster=verify=http://127.0.0.1:{peer_port}",
            "--unsafe-no-fsync",  # a throw-away store: durability only costs time
            "--log-level=warn",
        ], self.folder / "etcd.log"))
        self.port = free_port()
        pki = self.folder
        self._processes.append(_start("kube-apiserver", [
            str(self.kube_apiserver),
            f"--etcd-servers={etcd_url}",
            "--bind-address=127.0.0.1",
            "--advertise-address=127.0.0.1",
            f"--secure-port={self.port}",
            f"--cert-dir={self.folder / 'certs'}",
            f"--tls-cert-file={pki / 'serving.crt'}",
            f"--tls-private-key-file={pki / 'serving.key'}",
            f"--client-ca-file={pki / 'ca.crt'}",
            f"--service-account-key-file={pki / 'sa.pub'}",
            f"--service-account-signing-key-file={pki / 'sa.key'}",
            "--service-account-issuer=https://kubernetes.default.svc",
            f"--service-cluster-ip-range={SERVICE_CIDR}",
            "--authorization-mode=Node,RBAC",
            f"--enable-admission-plugins={','.join(ADMISSION_PLUGINS)}",
            # EKS allows privileged containers; Pod Security and the program's own
            # ValidatingAdmissionPolicy are what must refuse them, so allow them here too.
            "--allow-privileged=true",
            "--anonymous-auth=false",
            "--profiling=false",
            "--v=1",
        ], self.folder / "kube-apiserver.log"))
        self.client = ApiClient(
            f"https://127.0.0.1:{self.port}",
            ca=pki / "ca.crt",
            cert=pki / "admin.crt",
            key=pki / "admin.key",
        )
        self._wait_ready(self.client)
        return self.client

    def _wait_ready(self, client: ApiClient) -> None:
        deadline = time.monotonic() + START_TIMEOUT
        last = "no answer yet"
        while time.monotonic() < deadline:
            for process in self._processes:
                if process.popen.poll() is not None:
                    raise ClusterError(
                        f"{process.name} exited with code {process.popen.returncode} while starting:\n{process.tail()}"
                    )
            try:
                status, body = client.raw("GET", "/readyz", timeout=5)
                if status == 200:
                    return
                last = f"/readyz answered {status}: {body[-300:]!r}"
            except (ApiError, OSError) as exc:
                last = str(exc)
            time.sleep(0.5)
        raise ClusterError(f"kube-apiserver not ready after {START_TIMEOUT:.0f} s ({last}):\n"
                           f"{self._processes[-1].tail()}")

    def stop(self) -> None:
        """Stop the API server, then etcd; remove the folder. Safe to call twice.

        A second Ctrl-C while stopping waits until both are stopped (the signals are
        blocked meanwhile and delivered afterwards)."""
        blocked = {signal.SIGINT, signal.SIGTERM, signal.SIGHUP}
        previous = signal.pthread_sigmask(signal.SIG_BLOCK, blocked)
        try:
            for process in reversed(self._processes):
                _stop(process)
            self._processes.clear()
            if self.folder is not None and self.folder.exists():
                shutil.rmtree(self.folder, ignore_errors=True)
        finally:
            signal.pthread_sigmask(signal.SIG_SETMASK, previous)
