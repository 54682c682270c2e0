"""The Argo Workflows controller on the Workflows the Sensors created, and the first pods it makes.

The controller is the pinned `workflow-controller` (github.com/argoproj/argo-workflows/v4
v4.0.5, the version the Go module proxy serves; the chart deploys v4.0.6). It reads the
ConfigMap the chart would build from the program's Helm values. How it is derived (the
chart's `templates/controller/workflow-controller-config-map.yaml`, chart 1.0.x: one
top-level data key per setting, each a YAML text):
- `metricsConfig`: when `controller.metricsConfig.enabled`, `{enabled, path, port}` with
  the chart's defaults (`/metrics`, 9090) under the program's values (the chart's
  `interval` is the ServiceMonitor's; the controller refuses it as an unknown field);
- `workflowRestrictions`: `controller.workflowRestrictions` as given;
- `executor`: `{resources, securityContext}` of the top-level `executor` values;
and the executor image the chart passes as `--executor-image`
(`quay.io/argoproj/argoexec:<appVersion>`). Settings the program does not set are
left out, as the chart leaves them out.

Deviations, said in the report: the chart's controller ServiceAccount and ClusterRole
are not in the render (the chart makes them), so the controller runs as a
ServiceAccount bound to `cluster-admin`; no kubelet runs, so pods stay Pending: the
check is that the controller took the Workflow and the API server admitted its first
pod (Pod Security, the build namespace's admission policy).

Owns: the ConfigMap, the controller's identity, starting it (in a box of its own,
`components.e2e.sandbox`), and reading what it did. Does not own: the Workflows.
"""

from __future__ import annotations

import json
import os
import shutil
import time
from pathlib import Path
from typing import Any

import yaml

from components import versions
from components.verify.client import ApiClient

CONFIGMAP = "workflow-controller-configmap"
ACCOUNT = "e2e-workflow-controller"
EXECUTOR_IMAGE = f"quay.io/argoproj/argoexec:{versions.ARGO_WORKFLOWS.app_version}"
METRICS_DEFAULTS = {"enabled": True, "path": "/metrics", "port": 9090}


def helm_values(resources: list[dict[str, Any]]) -> tuple[str, dict[str, Any]] | None:
    """Namespace and values of the argo-workflows Helm release in a render's resources.json."""
    for item in resources:
        inputs = item.get("inputs") or {}
        if item.get("type") == "kubernetes:helm.sh/v3:Release" and inputs.get("chart") == "argo-workflows":
            return str(inputs.get("namespace") or "argo"), dict(inputs.get("values") or {})
    return None


def configmap(namespace: str, values: dict[str, Any]) -> dict[str, Any]:
    controller = values.get("controller") or {}
    data: dict[str, str] = {}
    metrics = controller.get("metricsConfig") or {}
    if metrics.get("enabled"):
        data["metricsConfig"] = yaml.safe_dump({**METRICS_DEFAULTS, **metrics}, sort_keys=True)
    if controller.get("workflowRestrictions"):
        data["workflowRestrictions"] = yaml.safe_dump(controller["workflowRestrictions"], sort_keys=True)
    executor = {k: v for k, v in (values.get("executor") or {}).items() if k in ("resources", "securityContext")}
    if executor:
        data["executor"] = yaml.safe_dump(executor, sort_keys=True)
    return {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": CONFIGMAP, "namespace": namespace},
            "data": data}


def identity(client: ApiClient, namespace: str) -> list[str]:
    """The controller's ServiceAccount, bound to cluster-admin; returns refusals."""
    problems = []
    manifests: tuple[dict[str, Any], ...] = (
        {"apiVersion": "v1", "kind": "ServiceAccount", "metadata": {"name": ACCOUNT, "namespace": namespace}},
        {"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "ClusterRoleBinding", "metadata": {"name": ACCOUNT},
         "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": "cluster-admin"},
         "subjects": [{"kind": "ServiceAccount", "name": ACCOUNT, "namespace": namespace}]},
    )
    for manifest in manifests:
        resource = client.resource(manifest["apiVersion"], manifest["kind"])
        assert resource is not None
        answer = client.apply(resource, manifest)
        if not answer.ok:
            problems.append(f"{manifest['kind']} {ACCOUNT}: {answer.reason}")
    return problems


def argv(namespace: str) -> list[str]:
    return ["/bin/workflow-controller", "--configmap", CONFIGMAP, "--executor-image", EXECUTOR_IMAGE,
            "--kubeconfig", "/kubeconfig", "--namespace", namespace, "--log-format", "json"]


def env() -> dict[str, str]:
    return {"LEADER_ELECTION_DISABLE": "true", "HOME": "/tmp"}


def pods_of(client: ApiClient, workflow: dict[str, Any]) -> list[dict[str, Any]]:
    label = f"workflows.argoproj.io/workflow={workflow['metadata']['name']}"
    answer = client.call("GET", f"/api/v1/pods?labelSelector={label}")
    return list(answer.body.get("items") or []) if answer.ok else []


def progress(client: ApiClient, workflow: dict[str, Any]) -> tuple[str, str, int]:
    """Phase, message and number of pods of one Workflow, read now."""
    meta = workflow["metadata"]
    answer = client.call("GET", f"/apis/argoproj.io/v1alpha1/namespaces/{meta['namespace']}/workflows/{meta['name']}")
    status = answer.body.get("status") or {}
    messages = sorted({str(n.get("message")) for n in (status.get("nodes") or {}).values() if n.get("message")})
    message = "; ".join(filter(None, [str(status.get("message") or ""), *messages]))
    return str(status.get("phase") or ""), message, len(pods_of(client, workflow))


def wait_first_pods(client: ApiClient, workflows: list[dict[str, Any]],
                    timeout: float) -> dict[str, tuple[str, str, int]]:
    """Until each Workflow has a phase and a pod, or has failed (or the time is up): name -> (phase, message, pods)."""
    deadline = time.monotonic() + timeout
    seen: dict[str, tuple[str, str, int]] = {}
    while True:
        seen = {w["metadata"]["name"]: progress(client, w) for w in workflows}
        # A pod can exist before the controller has written the Workflow's phase: wait for both.
        done = all((pods and phase) or phase in ("Failed", "Error") for phase, _, pods in seen.values())
        if done or time.monotonic() > deadline:
            return seen
        time.sleep(1.0)


def write_box(root: Path, binary: Path, kube: str) -> None:
    """The controller's root folder: binary, /tmp, kubeconfig."""
    (root / "tmp").mkdir(parents=True)
    (root / "bin").mkdir()
    try:
        os.link(binary, root / "bin" / "workflow-controller")
    except OSError:
        shutil.copy2(binary, root / "bin" / "workflow-controller")
    (root / "kubeconfig").write_text(kube, encoding="utf-8")


def spec(root: Path, namespace: str, api_port: int, api_socket: Path) -> str:
    return json.dumps({"root": str(root), "argv": argv(namespace), "env": env(),
                       "tcp_to_unix": {str(api_port): str(api_socket)}, "unix_to_tcp": {}}, sort_keys=True)
