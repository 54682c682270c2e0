"""What every step script needs the same way: its error, its output files, its input checks,
the decoding of payload text (`payload_text`), and SIGTERM and SIGINT as an exception
(so cleanup and outputs happen).

Not a step: imported by the scripts beside it (the ConfigMap mounts them together at
/opt/release-pipeline/scripts, the directory Python puts first on sys.path). No
dependency beyond the standard library.
"""

from __future__ import annotations

import base64
import binascii
import ipaddress
import json
import os
import re
import signal
import urllib.parse
from collections.abc import Mapping
from pathlib import Path, PurePosixPath

SHA = re.compile(r"^[0-9a-f]{40}$")
# Payload text arrives as `b64:` + base64 of its UTF-8 bytes (components/sensors.py).
PAYLOAD_PREFIX = "b64:"
GITHUB_REPO = re.compile(r"^[A-Za-z0-9](?:[A-Za-z0-9-]{0,38})/[A-Za-z0-9_.-]{1,100}$")


class StepError(Exception):
    """A failure with a message fit for the step's log (never a secret in it)."""


class Terminated(StepError):
    """SIGTERM or SIGINT: the Workflow was stopped or its deadline passed; clean up and say so."""


def _terminate(signum: int, _frame: object) -> None:
    raise Terminated(f"stopped by {signal.Signals(signum).name}")


def raise_on_signals() -> None:
    """Turn SIGTERM and SIGINT into Terminated, so `finally` blocks run (a temporary key is
    removed, an output is written) instead of the process dying where it stands."""
    signal.signal(signal.SIGTERM, _terminate)
    signal.signal(signal.SIGINT, _terminate)


def ignore_signals() -> None:
    """For the cleanup itself: a second signal must not cut it short."""
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    signal.signal(signal.SIGINT, signal.SIG_IGN)


def write_output(name: str, value: str) -> None:
    """One output parameter: the file `name` in $OUTPUT_DIR (default /tmp/outputs)."""
    directory = Path(os.environ.get("OUTPUT_DIR") or "/tmp/outputs")
    directory.mkdir(parents=True, exist_ok=True)
    (directory / name).write_text(value)


def commit_sha(environ: Mapping[str, str], name: str = "REVISION") -> str:
    """The full commit sha in `name` (40 lowercase hex), or StepError naming the variable."""
    value = environ.get(name, "")
    if not SHA.fullmatch(value):
        raise StepError(f"{name} must be a full 40-hex commit sha, got {value!r}")
    return value


def payload_text(environ: Mapping[str, str], name: str) -> str:
    """The payload text in `name` (e.g. PR_TITLE_B64), decoded: exactly what the delivery said.

    Empty stays empty (a push has no title). Anything else must be `b64:` + standard
    base64 of UTF-8 text, as the Sensor encodes it; otherwise StepError names the variable
    (the value is not repeated: it is attacker-controlled).
    """
    value = environ.get(name, "")
    if value == "":
        return ""
    if not value.startswith(PAYLOAD_PREFIX):
        raise StepError(f"{name} must be '{PAYLOAD_PREFIX}' + base64 of UTF-8 text (the Sensor's encoding)")
    try:
        return base64.b64decode(value[len(PAYLOAD_PREFIX):], validate=True).decode("utf-8")
    except (binascii.Error, ValueError):  # UnicodeDecodeError is a ValueError
        raise StepError(f"{name} is not valid base64 of UTF-8 text after '{PAYLOAD_PREFIX}'") from None


def relative_path(name: str, value: str) -> str:
    """`value` as a relative path inside a repository: not absolute, no `..`, no backslash.

    The callers add their own rules (empty allowed or not, a leading "-", control
    characters) with the same message.
    """
    path = PurePosixPath(value)
    if path.is_absolute() or ".." in path.parts or "\\" in value:
        raise StepError(f"{name} must be a relative path without '..', got {value!r}")
    return str(path)


def loopback_ip(host: str) -> bool:
    """True for a loopback IP address (127.0.0.0/8, ::1); a name, even `localhost`, is not one."""
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def api_base(url: str) -> str | None:
    """`url` without a trailing "/" if it is https, or plain http to a loopback address
    (`localhost` included: the tests' fakes); else None. A token never crosses a network in clear."""
    parsed = urllib.parse.urlsplit(url)
    host = parsed.hostname
    if host and (parsed.scheme == "https" or (parsed.scheme == "http" and (host == "localhost" or loopback_ip(host)))):
        return url.rstrip("/")
    return None


def error_message(body: bytes) -> str:
    """The `message` of a JSON error answer (a Kubernetes Status, GitHub's error), at most 300
    characters, or "": neither API echoes credentials in it."""
    try:
        answer = json.loads(body.decode() or "{}")
    except (ValueError, UnicodeDecodeError):
        return ""
    return str(answer.get("message", ""))[:300] if isinstance(answer, dict) else ""
