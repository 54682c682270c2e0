"""Tests of components/events.py: the pure builders, the component under mocks, whole stacks.

The builders are checked against the invariants of the intake (every webhook signed,
nothing insecure, one event and one Ingress path per repository, the URL GitHub gets
is the path the EventSource serves) and by upstream code (tests/upstream_support.py: argo-events-check validate for the
Argo Events objects, a local kube-apiserver for the rest). The component runs under a small
recording mock monitor; the whole-stack tests use `render_stack` from conftest.py.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pulumi
import pulumi_kubernetes as k8s
import pytest
import yaml

from components import events, intake
from components.config import STACKS, Settings, load_stack_settings
from tests.conftest import SERVICES_FILE
from tests.harness import run_under_mocks

PROJECT_DIR = Path(__file__).resolve().parent.parent
CHART_VALUES = PROJECT_DIR / "upstream" / "charts" / "argo-events" / "values.yaml"

REPOS = ["Appen/datacollect-platform", "Appen/sid_verification_backend_api"]
# Two services in one repository, one in another: two events, two paths.
SERVICE_REPOS = ["Appen/datacollect-platform", "Appen/sid_verification_backend_api",
                 "Appen/datacollect-platform"]

EVENTBUS_TYPE = "kubernetes:argoproj.io/v1alpha1:EventBus"
EVENTSOURCE_TYPE = "kubernetes:argoproj.io/v1alpha1:EventSource"
INGRESS_TYPE = "kubernetes:networking.k8s.io/v1:Ingress"
PDB_TYPE = "kubernetes:policy/v1:PodDisruptionBudget"


def stack_settings(stack: str = "dev") -> Settings:
    return load_stack_settings(PROJECT_DIR, stack)


def with_changes(settings: Settings, **changes: Any) -> Settings:
    """A copy of `settings` with nested fields replaced, validated again."""
    data = settings.model_dump()
    for dotted, value in changes.items():
        *parents, leaf = dotted.split("__")
        target = data
        for key in parents:
            target = target[key]
        target[leaf] = value
    return Settings.model_validate(data)


def github_events(manifest: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return manifest["spec"]["github"]


# ------------------------------------------------------------------ EventSource


def test_one_event_per_repository_shared_by_its_services() -> None:
    es = events.eventsource_manifest(stack_settings(), SERVICE_REPOS)
    assert sorted(github_events(es)) == sorted(intake.event_name(r) for r in REPOS)
    for repo in REPOS:
        event = github_events(es)[intake.event_name(repo)]
        owner, name = repo.split("/")
        assert event["repositories"] == [{"owner": owner, "names": [name]}]


def test_every_event_is_signed_and_nothing_is_insecure() -> None:
    es = events.eventsource_manifest(stack_settings(), REPOS)
    for repo in REPOS:
        event = github_events(es)[intake.event_name(repo)]
        assert event["webhookSecret"] == {
            "name": intake.webhook_secret_name(repo), "key": intake.WEBHOOK_SECRET_KEY,
        }
        assert "apiToken" not in event
        assert "githubApp" not in event
        assert event.get("insecure") is not True
        assert event["active"] is True
        assert event["contentType"] == "json"
        assert event["events"] == ["pull_request", "push"]


def test_endpoints_come_from_intake_on_one_shared_port() -> None:
    es = events.eventsource_manifest(stack_settings(), REPOS)
    hooks = {name: e["webhook"] for name, e in github_events(es).items()}
    assert {h["endpoint"] for h in hooks.values()} == {intake.endpoint(r) for r in REPOS}
    assert {h["port"] for h in hooks.values()} == {str(intake.EVENTSOURCE_PORT)}
    assert {h["method"] for h in hooks.values()} == {"POST"}
    ports = es["spec"]["service"]["ports"]
    assert [(p["port"], p["targetPort"]) for p in ports] == [
        (intake.EVENTSOURCE_PORT, intake.EVENTSOURCE_PORT)
    ]


def test_webhook_url_field_plus_endpoint_is_the_url_github_gets() -> None:
    # Upstream builds a hook URL as `url` + `endpoint`; it must equal intake's.
    settings = stack_settings()
    es = events.eventsource_manifest(settings, REPOS)
    for repo in REPOS:
        hook = github_events(es)[intake.event_name(repo)]["webhook"]
        assert hook["url"] + hook["endpoint"] == intake.webhook_url(settings.hostnames.events, repo)
        assert hook["url"].startswith("https://")


def test_eventsource_names_and_bus() -> None:
    settings = stack_settings()
    es = events.eventsource_manifest(settings, REPOS)
    assert es["apiVersion"] == "argoproj.io/v1alpha1"
    assert es["kind"] == "EventSource"
    assert es["metadata"]["name"] == intake.EVENTSOURCE_NAME
    assert es["metadata"]["namespace"] == settings.namespaces.events
    assert es["spec"]["eventBusName"] == events.EVENTBUS_NAME
    # The Service the controller makes for `spec.service` (pkg/reconciler/eventsource).
    assert events.EVENTSOURCE_SERVICE == "github-eventsource-svc"


@pytest.mark.parametrize("stack", STACKS)
def test_eventsource_replicas_and_resources_from_settings(stack: str) -> None:
    settings = stack_settings(stack)
    es = events.eventsource_manifest(settings, REPOS)
    size = settings.sizes.event_source
    assert es["spec"]["replicas"] == size.replicas >= 2
    assert es["spec"]["template"]["container"]["resources"] == size.resources.model_dump()


def test_live_runs_more_eventsource_replicas_than_dev() -> None:
    dev = events.eventsource_manifest(stack_settings("dev"), REPOS)["spec"]["replicas"]
    live = events.eventsource_manifest(stack_settings("live"), REPOS)["spec"]["replicas"]
    assert (dev, live) == (stack_settings("dev").sizes.event_source.replicas,
                           stack_settings("live").sizes.event_source.replicas)
    assert live > dev >= 2


def assert_restricted_pod(pod: dict[str, Any]) -> None:
    assert pod["runAsNonRoot"] is True
    assert pod["runAsUser"] > 0
    assert pod["seccompProfile"] == {"type": "RuntimeDefault"}


def assert_restricted_container(container: dict[str, Any]) -> None:
    assert container["allowPrivilegeEscalation"] is False
    assert container["capabilities"] == {"drop": ["ALL"]}
    assert container["readOnlyRootFilesystem"] is True
    assert container.get("privileged") is not True


def test_eventsource_pods_are_restricted_and_spread() -> None:
    template = events.eventsource_manifest(stack_settings(), REPOS)["spec"]["template"]
    assert_restricted_pod(template["securityContext"])
    assert_restricted_container(template["container"]["securityContext"])
    terms = template["affinity"]["podAntiAffinity"]["preferredDuringSchedulingIgnoredDuringExecution"]
    assert {t["podAffinityTerm"]["topologyKey"] for t in terms} == {
        "kubernetes.io/hostname", "topology.kubernetes.io/zone",
    }
    for term in terms:
        labels = term["podAffinityTerm"]["labelSelector"]["matchLabels"]
        assert labels["eventsource-name"] == intake.EVENTSOURCE_NAME


def test_restart_token_becomes_a_pod_annotation() -> None:
    es = events.eventsource_manifest(stack_settings(), REPOS, restart_token="42")
    assert es["spec"]["template"]["metadata"]["annotations"][events.RESTART_ANNOTATION] == "42"


def test_events_list_matches_what_the_webhooks_send() -> None:
    github_access = pytest.importorskip("components.github_access")
    assert events.GITHUB_EVENTS == github_access.WEBHOOK_EVENTS


# -------------------------------------------------------------------- EventBus


@pytest.mark.parametrize("stack", STACKS)
def test_eventbus_is_persistent_jetstream_from_settings(stack: str) -> None:
    settings = stack_settings(stack)
    bus = events.eventbus_manifest(settings)
    assert bus["kind"] == "EventBus"
    assert bus["metadata"]["name"] == "default"
    assert bus["metadata"]["namespace"] == settings.namespaces.events
    assert set(bus["spec"]) == {"jetstream"}
    js = bus["spec"]["jetstream"]
    assert js["replicas"] == settings.event_bus.replicas >= 3
    assert js["version"] == settings.event_bus.version
    assert js["persistence"] == {
        "storageClassName": settings.event_bus.storage_class,
        "accessMode": "ReadWriteOnce",
        "volumeSize": settings.event_bus.volume_size,
    }
    assert js["containerTemplate"]["resources"] == settings.event_bus.resources.model_dump()


def test_eventbus_settings_are_used() -> None:
    settings = with_changes(stack_settings(), event_bus__replicas=5, event_bus__storage_class="io2",
                            event_bus__volume_size="50Gi")
    js = events.eventbus_manifest(settings)["spec"]["jetstream"]
    assert (js["replicas"], js["persistence"]["storageClassName"], js["persistence"]["volumeSize"]) == (
        5, "io2", "50Gi",
    )


def test_eventbus_version_is_one_the_controller_lists() -> None:
    listed = {v["version"] for v in yaml.safe_load(CHART_VALUES.read_text())["configs"]["jetstream"]["versions"]}
    for stack in STACKS:
        assert events.eventbus_manifest(stack_settings(stack))["spec"]["jetstream"]["version"] in listed


def test_eventbus_pods_are_restricted_and_spread() -> None:
    js = events.eventbus_manifest(stack_settings())["spec"]["jetstream"]
    assert_restricted_pod(js["securityContext"])
    assert js["securityContext"]["fsGroup"] == js["securityContext"]["runAsUser"]  # volume writable
    for container in ("containerTemplate", "reloaderContainerTemplate", "metricsContainerTemplate"):
        assert_restricted_container(js[container]["securityContext"])
        assert set(js[container]["resources"]) == {"requests", "limits"}
    terms = js["affinity"]["podAntiAffinity"]["preferredDuringSchedulingIgnoredDuringExecution"]
    assert {t["podAffinityTerm"]["topologyKey"] for t in terms} == {
        "kubernetes.io/hostname", "topology.kubernetes.io/zone",
    }


# --------------------------------------------------------------------- Ingress


def test_ingress_routes_exactly_the_endpoints_to_the_eventsource_over_tls() -> None:
    settings = stack_settings()
    ing = events.ingress_manifest(settings, SERVICE_REPOS)
    host = settings.hostnames.events
    assert ing["metadata"]["namespace"] == settings.namespaces.events
    assert ing["spec"]["ingressClassName"] == settings.ingress.class_name
    assert ing["spec"]["tls"] == [{"hosts": [host]}]
    [rule] = ing["spec"]["rules"]
    assert rule["host"] == host
    paths = rule["http"]["paths"]
    assert sorted(p["path"] for p in paths) == sorted(intake.endpoint(r) for r in REPOS)
    for path in paths:
        assert path["pathType"] == "Exact"
        assert path["backend"] == {"service": {"name": "github-eventsource-svc",
                                               "port": {"number": intake.EVENTSOURCE_PORT}}}
    assert "defaultBackend" not in ing["spec"]


def test_webhook_url_is_host_plus_ingress_path_plus_endpoint() -> None:
    settings = stack_settings()
    ing = events.ingress_manifest(settings, REPOS)
    es = events.eventsource_manifest(settings, REPOS)
    [rule] = ing["spec"]["rules"]
    served = {f"https://{rule['host']}{p['path']}" for p in rule["http"]["paths"]}
    listened = {f"https://{rule['host']}{e['webhook']['endpoint']}" for e in github_events(es).values()}
    assert served == listened == {intake.webhook_url(settings.hostnames.events, r) for r in REPOS}


def test_ingress_is_public_https_only_alb() -> None:
    settings = stack_settings()
    annotations = events.ingress_manifest(settings, REPOS)["metadata"]["annotations"]
    alb = "alb.ingress.kubernetes.io"
    assert annotations[f"{alb}/scheme"] == "internet-facing"
    assert annotations[f"{alb}/target-type"] == "ip"
    assert annotations[f"{alb}/listen-ports"] == '[{"HTTPS": 443}]'
    assert annotations[f"{alb}/ssl-policy"] == settings.ingress.ssl_policy
    assert annotations[f"{alb}/group.name"] == f"{settings.ingress.group_name}-public"
    assert annotations[f"{alb}/healthcheck-path"] == "/health"
    assert f"{alb}/certificate-arn" not in annotations  # discovered by host name


def test_ingress_certificate_and_extra_annotations_from_settings() -> None:
    arn = "arn:aws:acm:us-east-1:111111111111:certificate/abc"
    settings = with_changes(stack_settings(), ingress__certificate_arn=arn, ingress__annotations={
        "external-dns.alpha.kubernetes.io/ttl": "60",
        "alb.ingress.kubernetes.io/scheme": "internal",  # cannot take GitHub's way in away
    })
    annotations = events.ingress_manifest(settings, REPOS)["metadata"]["annotations"]
    assert annotations["alb.ingress.kubernetes.io/certificate-arn"] == arn
    assert annotations["external-dns.alpha.kubernetes.io/ttl"] == "60"
    assert annotations["alb.ingress.kubernetes.io/scheme"] == "internet-facing"


# ------------------------------------------------------------------ all objects


def test_no_repositories_no_public_endpoint() -> None:
    objects = events.intake_manifests(stack_settings(), [])
    assert set(objects) == {"eventbus", "eventbus-pdb"}


def test_disruption_budgets_select_the_controller_made_pods() -> None:
    objects = events.intake_manifests(stack_settings(), REPOS)
    assert objects["eventsource-pdb"]["spec"]["selector"]["matchLabels"] == {
        "controller": "eventsource-controller", "eventsource-name": intake.EVENTSOURCE_NAME,
    }
    assert objects["eventbus-pdb"]["spec"]["selector"]["matchLabels"] == {
        "controller": "eventbus-controller", "eventbus-name": "default",
    }
    for role in ("eventsource-pdb", "eventbus-pdb"):
        assert objects[role]["spec"]["maxUnavailable"] == 1


def test_pod_monitors_only_with_the_prometheus_operator() -> None:
    settings = stack_settings()
    assert not settings.metrics.service_monitor
    assert not [r for r in events.intake_manifests(settings, REPOS) if "podmonitor" in r]
    with_monitor = with_changes(settings, metrics__service_monitor=True)
    objects = events.intake_manifests(with_monitor, REPOS)
    assert {"eventbus-podmonitor", "eventsource-podmonitor"} <= set(objects)
    assert objects["eventsource-podmonitor"]["spec"]["selector"]["matchLabels"]["eventsource-name"] == "github"


def test_builders_are_deterministic() -> None:
    settings = stack_settings("live")
    assert events.intake_manifests(settings, REPOS) == events.intake_manifests(settings, list(reversed(REPOS)))


@pytest.mark.parametrize("stack", STACKS)
def test_objects_validate_against_upstream_schemas(stack: str, upstream_judge: Any) -> None:
    settings = with_changes(stack_settings(stack), metrics__service_monitor=True)
    objects = list(events.intake_manifests(settings, SERVICE_REPOS, restart_token="1").values())
    assert upstream_judge.errors(objects) == []
    # Only the PodMonitor (a Prometheus Operator kind) has no schema there.
    assert upstream_judge.skipped <= {"monitoring.coreos.com/v1 PodMonitor"}, upstream_judge.skipped


# ------------------------------------------------------------ component (mocks)


def run_component(repos: list[str], restart_token: str | None = None) -> tuple[list[dict[str, Any]], dict[str, Any]]:
    seen: dict[str, Any] = {}

    def program() -> pulumi.Output[Any]:
        settings = stack_settings()
        ns = k8s.core.v1.Namespace("events-ns", metadata={"name": settings.namespaces.events})
        crds = {
            kind: k8s.apiextensions.v1.CustomResourceDefinition(
                f"{plural}-crd", metadata={"name": f"{plural}.argoproj.io"},
                spec={"group": "argoproj.io", "names": {"kind": kind, "plural": plural},
                      "scope": "Namespaced", "versions": []},
            )
            for kind, plural in (("EventBus", "eventbus"), ("EventSource", "eventsources"))
        }
        intake_ = events.EventIntake("intake", events.EventIntakeArgs(
            settings=settings, repos=repos, namespace=ns.metadata.name,
            argo_depends_on={kind: [crd] for kind, crd in crds.items()},
            restart_token=restart_token,
        ))
        seen["event_names"] = intake_.event_names
        return pulumi.Output.all(intake_.eventbus_name, intake_.eventsource_name).apply(
            lambda names: seen.update(names=names)
        )

    return run_under_mocks(program), seen


def by_name(records: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    return {r["name"]: r for r in records}


def test_component_children_are_parented_named_by_role_and_ordered() -> None:
    records, seen = run_component(SERVICE_REPOS)
    children = {r["name"]: r for r in records if r["parent"] == "intake"}
    assert {name: r["type"] for name, r in children.items()} == {
        "intake-eventbus": EVENTBUS_TYPE,
        "intake-eventbus-pdb": PDB_TYPE,
        "intake-eventsource": EVENTSOURCE_TYPE,
        "intake-eventsource-pdb": PDB_TYPE,
        "intake-ingress": INGRESS_TYPE,
    }
    # Dependencies: each object's own CRD (passed in) and the namespace first; the bus
    # before the source (the controller refuses to delete a bus in use); the source
    # before its Ingress.
    assert children["intake-eventbus"]["options"]["depends_on"] == sorted(["eventbus-crd", "events-ns"])
    assert children["intake-eventsource"]["options"]["depends_on"] == sorted(
        ["eventsources-crd", "events-ns", "intake-eventbus"]
    )
    assert "intake-eventsource" in children["intake-ingress"]["options"]["depends_on"]
    assert seen["names"] == ["default", "github"]
    assert seen["event_names"] == sorted(intake.event_name(r) for r in REPOS)


def test_component_registers_what_the_builders_build() -> None:
    records, _ = run_component(REPOS)
    objects = events.intake_manifests(stack_settings(), REPOS)
    registered = by_name(records)
    for role, manifest in objects.items():
        inputs = registered[f"intake-{role}"]["inputs"]
        assert inputs["metadata"]["name"] == manifest["metadata"]["name"]
        assert inputs["metadata"]["namespace"] == manifest["metadata"]["namespace"]
        assert (inputs["apiVersion"], inputs["kind"]) == (manifest["apiVersion"], manifest["kind"])
        assert _ints(inputs["spec"]) == manifest["spec"]


def test_component_restart_token_reaches_the_pod_template() -> None:
    records, _ = run_component(REPOS, restart_token="rv-1,rv-2")
    template = by_name(records)["intake-eventsource"]["inputs"]["spec"]["template"]
    assert template["metadata"]["annotations"][events.RESTART_ANNOTATION] == "rv-1,rv-2"


def test_component_without_repositories_has_only_the_bus() -> None:
    records, seen = run_component([])
    assert sorted(r["name"] for r in records if r["parent"] == "intake") == ["intake-eventbus", "intake-eventbus-pdb"]
    assert seen["event_names"] == []


def _ints(value: Any) -> Any:
    """The wire turns every number into a float; compare with the builder's ints."""
    if isinstance(value, dict):
        return {k: _ints(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_ints(v) for v in value]
    if isinstance(value, float) and value.is_integer():
        return int(value)
    return value


# -------------------------------------------------------------- whole stacks


@pytest.fixture
def render(request: pytest.FixtureRequest) -> Callable[..., tuple[list[dict[str, Any]], list[dict[str, Any]]]]:
    try:
        return request.getfixturevalue("render_stack")  # type: ignore[no-any-return]
    except pytest.FixtureLookupError:
        pytest.skip("tests/conftest.py has no render_stack fixture")


def _stack_repos(stack: str) -> list[str]:
    from components.config import load_services

    services = load_services(SERVICES_FILE).for_environment(stack)
    return sorted({s.repo for s in services})


@pytest.mark.parametrize("stack", STACKS)
def test_stack_has_the_bus_and_the_eventsource(render: Callable[..., Any], stack: str) -> None:
    settings = stack_settings(stack)
    resources, manifests = render(stack)
    mine = {r["name"]: r for r in resources if r["type"] in {EVENTBUS_TYPE, EVENTSOURCE_TYPE, INGRESS_TYPE}}
    bus = next(r for r in mine.values() if r["type"] == EVENTBUS_TYPE)
    source = next(r for r in mine.values() if r["type"] == EVENTSOURCE_TYPE)
    assert bus["inputs"]["metadata"]["name"] == "default"
    assert source["inputs"]["metadata"]["name"] == intake.EVENTSOURCE_NAME
    # Each depends on its own CRD and the Argo Events controller; the source comes after the bus.
    parent = next(r for r in resources if r["name"] == bus["parent"])
    assert parent["type"] == events.TYPE
    assert {"crds-argo-events-eventbus", "platform-argo-events"} <= set(bus["options"]["depends_on"])
    assert {"crds-argo-events-eventsources", "platform-argo-events", bus["name"]} <= set(
        source["options"]["depends_on"]
    )
    assert sorted(source["inputs"]["spec"]["github"]) == sorted(intake.event_name(r) for r in _stack_repos(stack))

    kinds = {(m["kind"], m["metadata"]["name"]) for m in manifests}
    assert {("EventBus", "default"), ("EventSource", "github"), ("Ingress", events.INGRESS_NAME)} <= kinds
    ingress = next(m for m in manifests if m["kind"] == "Ingress" and m["metadata"]["name"] == events.INGRESS_NAME)
    assert ingress["spec"]["rules"][0]["host"] == settings.hostnames.events


@pytest.mark.parametrize("stack", STACKS)
def test_stack_webhooks_post_where_the_eventsource_listens(render: Callable[..., Any], stack: str) -> None:
    resources, manifests = render(stack)
    hooks = {r["inputs"]["configuration"]["url"] for r in resources
             if r["type"] == "github:index/repositoryWebhook:RepositoryWebhook"}
    ingress = next(m for m in manifests if m["kind"] == "Ingress" and m["metadata"]["name"] == events.INGRESS_NAME)
    rule = ingress["spec"]["rules"][0]
    assert hooks == {f"https://{rule['host']}{p['path']}" for p in rule["http"]["paths"]}


@pytest.mark.parametrize("stack", STACKS)
def test_stack_intake_manifests_validate(render: Callable[..., Any], stack: str, upstream_judge: Any) -> None:
    _, manifests = render(stack)
    mine = [m for m in manifests if m["kind"] in {"EventBus", "EventSource"}
            or (m["kind"] == "Ingress" and m["metadata"]["name"] == events.INGRESS_NAME)]
    assert len(mine) == 3
    assert upstream_judge.errors(mine) == []
