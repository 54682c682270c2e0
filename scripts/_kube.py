"""The Kubernetes API client of supersede.py, verify.py, slack_thread.py and the Slack relay.

Not a step: imported by the scripts beside it. In-cluster by default (the pod's
service account token and CA, https://$KUBERNETES_SERVICE_HOST:$KUBERNETES_SERVICE_PORT);
the tests set

    K8S_API_URL                  a fake API server (plain http only to a loopback address)
    K8S_TOKEN_FILE, K8S_CA_FILE  instead of the service account's token and CA

The token is read on every call (the kubelet rotates the projected token in place)
and sent only in the Authorization header. A failed call raises KubeError, or the
subclass that tells the caller what to do: Conflict (409: read again and decide
again), NotFound (404), TransientError (429, 5xx or no answer: worth another try).
Its message names the method, the path without its query, the HTTP status and the
API's own `message`, never the token. Each call's whole exchange ends within
TIMEOUT_SECONDS or what the caller's Deadline leaves, whichever is less
(`_retry.fetch`); running out of that raises `_retry.DeadlineExceeded`.
"""

from __future__ import annotations

import json
import os
import re
import ssl
import urllib.parse
import urllib.request
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from _common import StepError, api_base, error_message
from _retry import Deadline, Unreachable, fetch

DNS1123_LABEL = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$")
DNS1123_SUBDOMAIN = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$")
SERVICE_ACCOUNT = "/var/run/secrets/kubernetes.io/serviceaccount"
TIMEOUT_SECONDS = 30


class KubeError(StepError):
    """A failed call (`code`: its HTTP status, 0 without one) or no usable API address."""

    def __init__(self, message: str, code: int = 0) -> None:
        super().__init__(message)
        self.code = code


class Conflict(KubeError):
    """409: the object changed since it was read; decide again."""


class NotFound(KubeError):
    """404: the object is gone (or was never there)."""


class TransientError(KubeError):
    """A 5xx, 429 or connection failure: worth another try."""


class Kube:
    """A minimal client: one JSON request at a time; a body is sent as a JSON merge patch."""

    def __init__(self, environ: Mapping[str, str], user_agent: str, deadline: Deadline | None = None) -> None:
        self.deadline = deadline or Deadline(None)
        url = environ.get("K8S_API_URL", "")
        if not url:
            host = environ.get("KUBERNETES_SERVICE_HOST", "")
            port = environ.get("KUBERNETES_SERVICE_PORT", "443")
            if not host:
                raise KubeError("not in a cluster: KUBERNETES_SERVICE_HOST is unset (or set K8S_API_URL)")
            url = f"https://[{host}]:{port}" if ":" in host else f"https://{host}:{port}"
        parsed = urllib.parse.urlsplit(url)
        if parsed.scheme != "https" and api_base(url) is None:
            raise KubeError("K8S_API_URL must be https (plain http only to a loopback address)")
        self.base = url.rstrip("/")
        self.user_agent = user_agent
        self.token_file = environ.get("K8S_TOKEN_FILE") or f"{SERVICE_ACCOUNT}/token"
        ca_file = environ.get("K8S_CA_FILE") or f"{SERVICE_ACCOUNT}/ca.crt"
        self.context = None
        if parsed.scheme == "https":
            self.context = ssl.create_default_context(cafile=ca_file if os.path.isfile(ca_file) else None)

    def request(self, method: str, path: str, body: Mapping[str, Any] | None = None) -> dict[str, Any]:
        """The answer's JSON object ({} when it is not an object), or KubeError."""
        headers = {"Accept": "application/json", "User-Agent": self.user_agent}
        if os.path.isfile(self.token_file):
            headers["Authorization"] = "Bearer " + Path(self.token_file).read_text().strip()
        data = None
        if body is not None:
            data = json.dumps(body).encode()
            headers["Content-Type"] = "application/merge-patch+json"
        request = urllib.request.Request(self.base + path, data=data, method=method, headers=headers)
        where = f"{method} {path.split('?', 1)[0]}"
        try:
            response = fetch(request, self.deadline, timeout=TIMEOUT_SECONDS, context=self.context)
        except Unreachable as error:
            raise TransientError(f"{where}: {str(error).split(': ', 1)[-1]}") from None
        code = response.status
        if code >= 300:  # redirects are not followed (_retry.fetch)
            kind = (Conflict if code == 409 else NotFound if code == 404
                    else TransientError if code == 429 or code >= 500 else KubeError)
            raise kind(f"{where}: HTTP {code} {error_message(response.body)}".rstrip(), code)
        try:
            answer = json.loads(response.body)
        except ValueError:
            raise TransientError(f"{where}: HTTP {code} with an answer that is not JSON") from None
        return answer if isinstance(answer, dict) else {}

