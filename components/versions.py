"""Every version this program deploys, pinned in one place.

Owns: Helm chart versions (argo-helm), the upstream CRD release each chart's
application version matches (and the Go module the CRD copies in upstream/crds come
from), the container images workflow steps run, and the upstream tools the tests run
(`components.toolchain` builds them).
Does not own: Python dependency pins (`requirements*.txt`). The images the charts
run (controllers, Dex, Redis) are pinned by the chart version: the values set no
image tags, so each chart runs its own `appVersion` and the images its defaults name.

How to bump (also in docs/operating.md, "Bump chart and CRD versions"):
1. Pick the new chart version in https://github.com/argoproj/argo-helm and read its
   `appVersion` (`helm show chart argo/<chart> --version <v>`).
2. Set `ChartPin.version` and `ChartPin.app_version` below; the CRD URLs follow the
   application version, so CRDs and controllers move together. If a CRD file was
   added or renamed upstream, update `crd_paths` and the kind table in
   `components.crds` (tests fail until both agree).
3. Set the CRD source in `CRD_SOURCES` (the same version, or the nearest one the Go
   module proxy serves, with the reason) and run `python -m components refresh-upstream`:
   `upstream/crds/` holds byte-for-byte copies the tests read. Tool pins (end of this
   file) move with their go.mod in `tools/<dir>` (`go get MODULE@VERSION && go mod tidy`).
4. Run the tests (the chart values are checked against the chart's own defaults in
   ../shared/charts, which must be refreshed to the same chart version) and review
   `python -m components render --stack all` for the diff, then `pulumi preview`.
"""

from __future__ import annotations

from dataclasses import dataclass

ARGO_HELM_REPO = "https://argoproj.github.io/argo-helm"


@dataclass(frozen=True)
class ChartPin:
    """A chart of the argo-helm repository and the upstream release it deploys."""

    chart: str
    version: str
    app_version: str  # upstream tag, e.g. "v3.4.4"
    upstream: str  # GitHub owner/name of the application
    crd_paths: tuple[str, ...]  # paths of the CRD files in the upstream repo at app_version

    def crd_urls(self) -> tuple[str, ...]:
        """URLs of the CRD files of exactly this application version."""
        base = f"https://raw.githubusercontent.com/{self.upstream}/{self.app_version}"
        return tuple(f"{base}/{path}" for path in self.crd_paths)


ARGO_CD = ChartPin(
    chart="argo-cd",
    version="10.1.1",
    app_version="v3.4.4",
    upstream="argoproj/argo-cd",
    crd_paths=(
        "manifests/crds/application-crd.yaml",
        "manifests/crds/applicationset-crd.yaml",
        "manifests/crds/appproject-crd.yaml",
    ),
)
ARGO_WORKFLOWS = ChartPin(
    chart="argo-workflows",
    version="1.0.18",
    app_version="v4.0.6",
    upstream="argoproj/argo-workflows",
    # The "full" CRDs carry the schema (and CEL rules), so the API server rejects a
    # malformed WorkflowTemplate at apply time instead of at run time.
    crd_paths=tuple(
        f"manifests/base/crds/full/argoproj.io_{kind}.yaml"
        for kind in (
            "clusterworkflowtemplates",
            "cronworkflows",
            "workflowartifactgctasks",
            "workfloweventbindings",
            "workflows",
            "workflowtaskresults",
            "workflowtasksets",
            "workflowtemplates",
        )
    ),
)
ARGO_EVENTS = ChartPin(
    chart="argo-events",
    version="2.4.22",
    app_version="v1.9.10",
    upstream="argoproj/argo-events",
    crd_paths=tuple(
        f"manifests/base/crds/argoproj.io_{kind}.yaml"
        for kind in ("eventbus", "eventsources", "sensors")
    ),
)
ARGO_ROLLOUTS = ChartPin(
    chart="argo-rollouts",
    version="2.41.0",
    app_version="v1.9.0",
    upstream="argoproj/argo-rollouts",
    crd_paths=tuple(
        f"manifests/crds/{kind}-crd.yaml"
        for kind in (
            "analysis-run",
            "analysis-template",
            "cluster-analysis-template",
            "experiment",
            "rollout",
        )
    ),
)
ARGOCD_IMAGE_UPDATER = ChartPin(
    chart="argocd-image-updater",
    version="1.2.4",
    app_version="v1.2.2",
    upstream="argoproj-labs/argocd-image-updater",
    crd_paths=("config/crd/bases/argocd-image-updater.argoproj.io_imageupdaters.yaml",),
)

CHARTS: tuple[ChartPin, ...] = (
    ARGO_CD,
    ARGO_EVENTS,
    ARGO_ROLLOUTS,
    ARGO_WORKFLOWS,
    ARGOCD_IMAGE_UPDATER,
)


@dataclass(frozen=True)
class ToolImage:
    """An image this project builds itself from `images/<name>/Dockerfile`.

    Pushed by `make images` to the stack's `toolImages.registry`, whose repositories
    have immutable tags: a version, once pushed, cannot move. Bump `version` with
    every change to the Dockerfile or its base image (pinned in the Dockerfile).
    """

    name: str
    version: str

    def ref(self, registry: str) -> str:
        return f"{registry}/{self.name}:{self.version}"


# git, openssh, Python 3 with the step scripts' libraries (ruamel.yaml, PyJWT,
# cryptography, boto3): checkout, change check, unit-test sources, promote, verify, notify.
RELEASE_TOOLS = ToolImage("release-tools", "1.0.0")
# Rootless BuildKit with docker-credential-ecr-login, so the pod's AWS identity logs
# in to ECR without a token in any file, argument or log.
BUILDKIT_ECR = ToolImage("buildkit-ecr", "1.0.0")
TOOL_IMAGES: tuple[ToolImage, ...] = (BUILDKIT_ECR, RELEASE_TOOLS)


# --- Upstream tools ---------------------------------------------------------------
# The real programs the tests check the render with (`make tools`, components.toolchain):
# each is built from its pinned Go module (tools/<dir>/go.mod requires exactly the version
# below; tests/test_toolchain.py checks that they agree).
#
# Kubernetes: the program supports Kubernetes 1.34 -- the minor the Argo controllers it
# deploys are built against (argo-rollouts v1.9.0 requires k8s.io/kubernetes v1.34.1 and
# client-go v0.34; argo-workflows v4.0.x and argo-events v1.9.x use older client-go,
# which the 1.34 API server serves) and a minor EKS runs in standard support. The API
# server the tests apply the render to is the newest 1.34 patch the Go module proxy serves.
KUBERNETES = "v1.34.4"
# etcd: the version Kubernetes 1.34 ships with (its build/dependencies.yaml).
ETCD = "v3.6.5"
# Argo Workflows CLI (`argo lint --offline`). DEVIATION: the chart deploys v4.0.6
# (ARGO_WORKFLOWS.app_version), but the Go module proxy refuses
# github.com/argoproj/argo-workflows/v4@v4.0.6, so the CLI is the closest served
# release, v4.0.5 (docs/decisions/0161-argo-cli-v4.0.5.md). Move it to the chart's
# version as soon as the proxy serves it.
ARGO_WORKFLOWS_CLI = "v4.0.5"
# kubectl-argo-rollouts (`lint`): the controller's own release.
ARGO_ROLLOUTS_CLI = ARGO_ROLLOUTS.app_version
# argo-events-check (tools/eventscheck, this project's program): built against the
# argo-events module of the controller the chart deploys.
ARGO_EVENTS_CHECK = ARGO_EVENTS.app_version
# actionlint: checks .github/workflows.
ACTIONLINT = "v1.7.12"
# nats-server: the JetStream version the EventBus names by default
# (components.config.EventBusSettings.version).
NATS_SERVER = "v2.10.10"


@dataclass(frozen=True)
class CrdSource:
    """The Go module that carries a chart's CRD files (upstream/crds, scripts/refresh_upstream.py).

    ``version`` is the chart's ``app_version`` unless the Go module proxy does not serve
    that version; then it is the nearest served release and ``deviation`` says why.
    """

    chart: str
    module: str
    version: str
    deviation: str = ""


CRD_SOURCES: tuple[CrdSource, ...] = (
    CrdSource("argo-cd", "github.com/argoproj/argo-cd/v3", ARGO_CD.app_version),
    CrdSource("argo-events", "github.com/argoproj/argo-events", ARGO_EVENTS.app_version),
    CrdSource("argo-rollouts", "github.com/argoproj/argo-rollouts", ARGO_ROLLOUTS.app_version),
    CrdSource(
        "argo-workflows",
        "github.com/argoproj/argo-workflows/v4",
        ARGO_WORKFLOWS_CLI,
        deviation="the Go module proxy does not serve v4.0.6 (the chart's appVersion); v4.0.5 is the nearest served",
    ),
    CrdSource(
        "argocd-image-updater",
        "github.com/argoproj-labs/argocd-image-updater",
        "v1.2.1",
        deviation="the Go module proxy does not serve v1.2.2 (the chart's appVersion); v1.2.1 is the nearest served",
    ),
)
