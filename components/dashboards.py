"""The release dashboard, provisioned for Grafana's dashboards sidecar.

Owns (once per stack, only with `metrics.grafanaDashboard`, which needs
`metrics.releaseMetrics`): the ConfigMap `release-pipeline-dashboard` in the configured
namespace, carrying `dashboards/release-pipeline.json` exactly as it is in the
repository, labelled for the sidecar and, with `folder`, annotated with the Grafana
folder. The file is the one source: the program reads it at run time and refuses a
missing or invalid file with a one-line message (no traceback).

Does not own: Grafana, its sidecar or its Prometheus data source; the namespace (often
a `monitoring` namespace another team runs: it must exist, and be one the sidecar
searches); the metrics the dashboard shows (`components.workflows`, served by the Argo
Workflows controller, `components.helm_values`).

Decisions: docs/decisions/0416-dashboard-as-a-sidecar-configmap.md.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pulumi
import pulumi_kubernetes as k8s

from components.config import GrafanaDashboard

TYPE = "release-pipeline:components:ReleaseDashboard"

PIPELINE = "release-pipeline"
COMPONENT = "release-dashboard"
CONFIG_MAP_NAME = "release-pipeline-dashboard"
# The repository's dashboard, relative to the project directory; also the key the
# sidecar writes it to (the file name Grafana reads).
DASHBOARD_FILE = Path("dashboards/release-pipeline.json")
DASHBOARD_KEY = DASHBOARD_FILE.name
# What a ConfigMap holds at most (etcd's object limit), data and keys together.
CONFIG_MAP_MAX_BYTES = 1024 * 1024
# An export's data source input, e.g. `${DS_PROMETHEUS}`: only the import dialog fills it.
IMPORT_INPUT = re.compile(r"\$\{DS_[A-Za-z0-9_]+\}")

Manifest = dict[str, Any]


class DashboardError(ValueError):
    """The dashboard file cannot be provisioned as it is."""


def read_dashboard(path: Path) -> str:
    """The dashboard file's text, after checking the sidecar can provision it."""
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as err:
        reason = err.strerror if isinstance(err, OSError) else "not UTF-8"
        raise DashboardError(f"{path}: cannot read: {reason}") from None
    try:
        dashboard = json.loads(text)
    except ValueError as err:
        raise DashboardError(f"{path}: not valid JSON: {err}") from None
    if not isinstance(dashboard, dict):
        raise DashboardError(f"{path}: must be a JSON object (a Grafana dashboard)")
    if "__inputs" in dashboard or IMPORT_INPUT.search(text):
        raise DashboardError(
            f"{path}: uses import inputs ('__inputs', '${{DS_...}}'), which the Grafana sidecar does not "
            "substitute; use a 'datasource' template variable instead"
        )
    size = len(DASHBOARD_KEY.encode()) + len(text.encode())
    if size > CONFIG_MAP_MAX_BYTES:
        raise DashboardError(f"{path}: {size} bytes, more than a ConfigMap holds ({CONFIG_MAP_MAX_BYTES})")
    return text


def dashboard_config_map(options: GrafanaDashboard, text: str) -> Manifest:
    """The ConfigMap the sidecar turns into the dashboard: `text` as it is, under `release-pipeline.json`."""
    labels = {"app.kubernetes.io/managed-by": PIPELINE, "app.kubernetes.io/component": COMPONENT,
              options.label: options.label_value}
    metadata: Manifest = {"name": CONFIG_MAP_NAME, "namespace": options.namespace, "labels": labels}
    if options.folder is not None:
        metadata["annotations"] = {options.folder_annotation: options.folder}
    return {"apiVersion": "v1", "kind": "ConfigMap", "metadata": metadata, "data": {DASHBOARD_KEY: text}}


# ---------------------------------------------------------------------- component


@dataclass(frozen=True)
class ReleaseDashboardArgs:
    """What the provisioned release dashboard is made from."""

    options: GrafanaDashboard
    """`metrics.grafanaDashboard`: namespace, sidecar label and value, folder."""
    text: str
    """The dashboard file's text, checked by `read_dashboard` (`<project>/dashboards/release-pipeline.json`)."""
    namespaces: Mapping[str, pulumi.Input[str]]
    """Namespace name -> the Namespace resource's name Output, for the namespaces this
    program manages: a ConfigMap in one of them waits for it. Any other namespace is
    used by name and must exist."""


class ReleaseDashboard(pulumi.ComponentResource):
    """The sidecar-labelled ConfigMap carrying the release dashboard."""

    config_map_name: str
    """Name of the ConfigMap (in `options.namespace`)."""

    def __init__(self, name: str, args: ReleaseDashboardArgs, opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__(TYPE, name, None, opts)
        manifest = dashboard_config_map(args.options, args.text)
        metadata = manifest["metadata"]
        k8s.core.v1.ConfigMap(
            f"{name}-config-map",
            metadata=k8s.meta.v1.ObjectMetaArgs(
                name=metadata["name"],
                namespace=args.namespaces.get(metadata["namespace"], metadata["namespace"]),
                labels=metadata["labels"],
                annotations=metadata.get("annotations"),
            ),
            data=manifest["data"],
            opts=pulumi.ResourceOptions(parent=self),
        )
        self.config_map_name = metadata["name"]
        self.register_outputs({"config_map_name": self.config_map_name})
