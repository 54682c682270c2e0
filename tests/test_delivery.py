"""Delivery: the Application and the Rollout of each service (pure builders), and the component.

Builder tests use the real stack files' settings (dev and live differ in canary
profile and cascading delete) and small services files written here. Component
tests use the `render_stack` fixture: the real program, rendered offline, with the
real services.yaml or a services file written here.
"""

from __future__ import annotations

from pathlib import PurePosixPath
from typing import Any

import pytest

from components import canary, names
from components.config import (
    STACKS,
    ReleaseSettings,
    Service,
    Settings,
    load_stack_settings,
    parse_services,
)
from components.delivery import (
    CASCADE_FINALIZER,
    SERVICE_IGNORE_CHANGES,
    TYPE,
    analysis_starting_step,
    analysis_template_name,
    application_manifest,
    canary_service_name,
    delivery_manifests,
    rollout_manifest,
    stable_service_name,
    values_file,
    values_path_in_repo,
)
from components.github_access import git_ssh_url
from components.helm_values import OWN_CHANNEL_LABEL, SUBSCRIBE_ANNOTATION
from tests.conftest import ROOT, SERVICES_FILE, RenderStack

PLAIN = """
  - name: vbsiv
    repo: Appen/sid_verification_backend_api
    imageRepository: datacollect-vbsiv
    namespace: datacollect
    project: datacollect
    helm: {repo: Appen-International/datacollect-helm, path: app/vbsiv}
"""
# Own Slack channel, own values file, own live canary, another Deployment name,
# ALB traffic routing with a root Service, analysis, fixed replicas, pod labels.
FULL = """
  - name: ledger
    repo: Appen/ledger
    imageRepository: payments-ledger
    namespace: payments
    project: payments
    slackChannel: "#payments-releases"
    helm: {repo: Appen-International/payments-helm, path: charts/ledger, valuesFile: values-live.yaml}
    canary:
      live:
        - setWeight: 10
        - pause: {}
        - setWeight: 50
        - pause: {duration: 5m}
    rollout:
      deployment: ledger-api
      scaleDown: onsuccess
      trafficRouting: true
      port: 9000
      ingress: ledger-public
      rootService: ledger
      analysis: true
      replicas: 4
      selector: {app.kubernetes.io/name: ledger, app.kubernetes.io/component: api}
"""


def _settings(stack: str = "dev", **update: Any) -> Settings:
    settings = load_stack_settings(ROOT, stack)
    return settings.model_copy(update=update) if update else settings


def _service(text: str = PLAIN) -> Service:
    return parse_services("services:\n" + text, "services.yaml").services[0]


# ------------------------------------------------------------------- Application


@pytest.mark.parametrize("stack", STACKS)
def test_application_syncs_the_chart_from_this_environments_branch_into_the_service_namespace(stack: str) -> None:
    settings, service = _settings(stack), _service()
    app = application_manifest(service, settings)
    assert app["metadata"]["name"] == names.application_name("vbsiv", stack) == f"vbsiv-{stack}"
    assert app["metadata"]["namespace"] == settings.namespaces.argocd
    spec = app["spec"]
    assert spec["project"] == names.app_project_name("datacollect")
    assert spec["source"] == {
        "repoURL": "git@github.com:Appen-International/datacollect-helm.git",
        "path": "app/vbsiv",
        "targetRevision": settings.helm_branch,
        "helm": {"releaseName": "vbsiv", "valueFiles": [settings.values_file]},
    }
    # The repository Secret registers the helm repository under exactly this URL.
    assert spec["source"]["repoURL"] == git_ssh_url(service.helm.repo)
    assert spec["destination"] == {"server": "https://kubernetes.default.svc", "namespace": "datacollect"}


def test_the_values_file_argo_cd_reads_is_the_one_promote_edits() -> None:
    settings = _settings("live")
    for service, expected in ((_service(), "values.yaml"), (_service(FULL), "values-live.yaml")):
        source = application_manifest(service, settings)["spec"]["source"]
        assert source["helm"]["valueFiles"] == [values_file(service, settings)] == [expected]
        # Argo CD reads value files relative to the chart; promote.py's VALUES_FILE is
        # relative to the repository root. Both name one file.
        in_repo = PurePosixPath(source["path"]) / source["helm"]["valueFiles"][0]
        assert str(in_repo) == values_path_in_repo(service, settings) == f"{service.helm.path}/{expected}"


def test_application_syncs_automatically_prunes_self_heals_and_retries() -> None:
    policy = application_manifest(_service(), _settings())["spec"]["syncPolicy"]
    assert policy["automated"] == {"prune": True, "selfHeal": True}
    retry = policy["retry"]
    assert retry["limit"] >= 1
    assert set(retry["backoff"]) == {"duration", "factor", "maxDuration"}
    assert retry["backoff"]["factor"] >= 1


def test_deployment_replicas_are_ignored_and_the_ignore_is_respected_on_sync() -> None:
    spec = application_manifest(_service(), _settings())["spec"]
    assert spec["ignoreDifferences"] == [{"group": "apps", "kind": "Deployment", "jsonPointers": ["/spec/replicas"]}]
    options = spec["syncPolicy"]["syncOptions"]
    assert "RespectIgnoreDifferences=true" in options
    assert "CreateNamespace=false" in options  # the platform owns namespaces
    assert not any(o.startswith("CreateNamespace=true") for o in options)


def test_cascading_finalizer_follows_the_setting_only() -> None:
    service = _service()
    for stack in STACKS:
        settings = _settings(stack)
        finalizers = application_manifest(service, settings)["metadata"].get("finalizers")
        assert (finalizers == [CASCADE_FINALIZER]) is settings.release.cascade_delete
    assert _settings("dev").release.cascade_delete and not _settings("live").release.cascade_delete
    # The same stack with the setting flipped: the data decides, not the stack name.
    flipped_live = _settings("live", release=ReleaseSettings(cascade_delete=True))
    assert application_manifest(service, flipped_live)["metadata"]["finalizers"] == [CASCADE_FINALIZER]
    flipped_dev = _settings("dev", release=ReleaseSettings(cascade_delete=False))
    assert "finalizers" not in application_manifest(service, flipped_dev)["metadata"]


def test_notifications_default_channel_unless_the_service_has_its_own() -> None:
    settings = _settings()
    plain = delivery_manifests(_service(), settings)
    for key in ("application", "rollout"):
        metadata = plain[key]["metadata"]
        assert OWN_CHANNEL_LABEL not in metadata["labels"]
        assert "annotations" not in metadata  # the stack's default subscription covers it
    full = delivery_manifests(_service(FULL), settings)
    expected = {
        "application": ("on-sync-succeeded", "on-sync-failed", "on-health-degraded"),
        "rollout": ("on-rollout-paused", "on-rollout-aborted", "on-rollout-completed"),
    }
    for key, triggers in expected.items():
        metadata = full[key]["metadata"]
        assert metadata["labels"][OWN_CHANNEL_LABEL] == "true"
        assert metadata["annotations"] == {SUBSCRIBE_ANNOTATION.format(trigger=t): "payments-releases"
                                           for t in triggers}


# ------------------------------------------------------------------------ Rollout


def test_rollout_references_the_charts_deployment_and_never_scales_it_by_default() -> None:
    settings = _settings()
    rollout = rollout_manifest(_service(), settings)
    assert rollout["metadata"]["name"] == names.rollout_name("vbsiv") == "vbsiv"
    assert rollout["metadata"]["namespace"] == "datacollect"
    spec = rollout["spec"]
    assert spec["workloadRef"] == {"apiVersion": "apps/v1", "kind": "Deployment", "name": "vbsiv",
                                   "scaleDown": "never"}
    # With workloadRef the template and selector come from the Deployment.
    assert not {"template", "selector"} & set(spec)
    full = rollout_manifest(_service(FULL), settings)["spec"]
    assert full["workloadRef"]["name"] == "ledger-api"
    assert full["workloadRef"]["scaleDown"] == "onsuccess"
    assert full["replicas"] == 4


# Stack -> the replicas a service without its own gets: live's stack file says 5; the
# others have none, so the fewest that honour their steps (dev: setWeight 100 -> 1;
# sandbox: 50 -> 2; integration: 25, 50 -> 3).
DEFAULT_REPLICAS = {"dev": 1, "sandbox": 2, "integration": 3, "live": 5}


@pytest.mark.parametrize("stack", STACKS)
def test_every_rollout_states_its_replicas_never_argo_rollouts_default_of_one(stack: str) -> None:
    settings = _settings(stack)
    assert rollout_manifest(_service(), settings)["spec"]["replicas"] == DEFAULT_REPLICAS[stack]
    weights = [s.set_weight for s in settings.canary if s.set_weight is not None]
    assert canary.unhonoured_steps(weights, DEFAULT_REPLICAS[stack]) == []


def test_replicas_come_from_the_environment_then_the_service_then_the_stack() -> None:
    text = PLAIN + "    rollout: {replicas: 6, replicasByEnvironment: {live: 9}}\n"
    live, dev = _settings("live"), _settings("dev")
    assert rollout_manifest(_service(text), live)["spec"]["replicas"] == 9
    assert rollout_manifest(_service(text), dev)["spec"]["replicas"] == 6
    stack_wide = dev.model_copy(update={"release": dev.release.model_copy(update={"replicas": 3})})
    assert rollout_manifest(_service(), stack_wide)["spec"]["replicas"] == 3


def test_with_an_hpa_the_rollout_leaves_replicas_to_it() -> None:
    text = PLAIN + "    rollout: {hpa: true}\n"
    for stack in STACKS:
        assert "replicas" not in rollout_manifest(_service(text), _settings(stack))["spec"]


@pytest.mark.parametrize("stack", STACKS)
def test_canary_steps_come_from_the_environment_profile(stack: str) -> None:
    settings = _settings(stack)
    steps = rollout_manifest(_service(), settings)["spec"]["strategy"]["canary"]["steps"]
    assert steps == [s.model_dump(by_alias=True, exclude_none=True) for s in settings.canary]


def test_live_profile_steps_render_as_argo_rollouts_spells_them() -> None:
    steps = rollout_manifest(_service(), _settings("live"))["spec"]["strategy"]["canary"]["steps"]
    assert steps[:4] == [{"setWeight": 20}, {"pause": {}}, {"setWeight": 40}, {"pause": {"duration": "10m"}}]


def test_a_service_overrides_the_steps_of_one_environment_only() -> None:
    service = _service(FULL)
    live = rollout_manifest(service, _settings("live"))["spec"]["strategy"]["canary"]["steps"]
    assert live == [{"setWeight": 10}, {"pause": {}}, {"setWeight": 50}, {"pause": {"duration": "5m"}}]
    dev_settings = _settings("dev")
    dev = rollout_manifest(service, dev_settings)["spec"]["strategy"]["canary"]["steps"]
    assert dev == [s.model_dump(by_alias=True, exclude_none=True) for s in dev_settings.canary]


def test_without_traffic_routing_the_canary_is_by_replica_weight_and_no_service_is_made() -> None:
    manifests = delivery_manifests(_service(), _settings("live"))
    assert set(manifests) == {"application", "rollout"}
    canary = manifests["rollout"]["spec"]["strategy"]["canary"]
    assert not {"trafficRouting", "canaryService", "stableService", "analysis"} & set(canary)


def test_traffic_routing_makes_stable_and_canary_services_and_routes_through_the_alb() -> None:
    manifests = delivery_manifests(_service(FULL), _settings("live"))
    canary = manifests["rollout"]["spec"]["strategy"]["canary"]
    assert canary["canaryService"] == canary_service_name("ledger") == "ledger-canary"
    assert canary["stableService"] == stable_service_name("ledger") == "ledger-stable"
    assert canary["trafficRouting"] == {"alb": {"ingress": "ledger-public", "servicePort": 9000,
                                                "rootService": "ledger"}}
    for role, name in (("canary-service", "ledger-canary"), ("stable-service", "ledger-stable")):
        svc = manifests[role]
        assert (svc["kind"], svc["metadata"]["name"], svc["metadata"]["namespace"]) == ("Service", name, "payments")
        assert svc["spec"]["selector"] == {"app.kubernetes.io/component": "api", "app.kubernetes.io/name": "ledger"}
        assert svc["spec"]["ports"] == [{"name": "http", "port": 9000, "targetPort": 9000, "protocol": "TCP"}]
        assert svc["spec"]["type"] == "ClusterIP"


def test_traffic_routing_defaults_ingress_to_the_service_name_and_root_to_the_stable_service() -> None:
    text = PLAIN + "    rollout: {trafficRouting: true}\n"
    manifests = delivery_manifests(_service(text), _settings())
    assert manifests["rollout"]["spec"]["strategy"]["canary"]["trafficRouting"] == {
        "alb": {"ingress": "vbsiv", "servicePort": 8080}
    }
    assert manifests["stable-service"]["spec"]["selector"] == {"app.kubernetes.io/name": "vbsiv"}


def test_analysis_adds_the_template_and_runs_it_in_the_background_of_the_canary() -> None:
    settings = _settings("live")
    manifests = delivery_manifests(_service(FULL), settings)
    template = manifests["analysis-template"]
    assert template["metadata"] == template["metadata"] | {"name": "ledger-success-rate", "namespace": "payments"}
    assert analysis_template_name("ledger") == "ledger-success-rate"
    assert template["spec"]["args"] == [{"name": "service"}, {"name": "namespace"}]
    (metric,) = template["spec"]["metrics"]
    analysis = settings.analysis
    assert metric["successCondition"] == f"result[0] >= {analysis.success_threshold}"
    assert metric["interval"] == analysis.interval and metric["failureLimit"] == analysis.failure_limit
    assert metric["provider"] == {"prometheus": {"address": analysis.prometheus_address,
                                                 "query": analysis.success_rate_query}}
    block = manifests["rollout"]["spec"]["strategy"]["canary"]["analysis"]
    assert block == {
        "templates": [{"templateName": "ledger-success-rate"}],
        "args": [{"name": "service", "value": "ledger"}, {"name": "namespace", "value": "payments"}],
        "startingStep": 1,  # once the first setWeight is done: the canary takes traffic
    }
    # Every argument the template declares is given.
    assert {a["name"] for a in template["spec"]["args"]} == {a["name"] for a in block["args"]}


def test_analysis_starts_after_the_first_weight_or_at_once_when_that_is_the_last_step() -> None:
    dev = _settings("dev")
    assert analysis_starting_step(dev.canary) is None  # dev: a single setWeight 100
    text = PLAIN + "    rollout: {analysis: true}\n"
    block = rollout_manifest(_service(text), dev)["spec"]["strategy"]["canary"]["analysis"]
    assert "startingStep" not in block
    assert analysis_starting_step(_settings("live").canary) == 1


def test_analysis_off_means_no_template_and_no_analysis_block() -> None:
    text = PLAIN + "    rollout: {trafficRouting: true}\n"
    manifests = delivery_manifests(_service(text), _settings("live"))
    assert "analysis-template" not in manifests
    assert "analysis" not in manifests["rollout"]["spec"]["strategy"]["canary"]


def test_long_service_names_still_give_valid_service_names() -> None:
    long_name = "s" + "x" * 61 + "e"
    for name in (stable_service_name(long_name), canary_service_name(long_name)):
        assert names.is_dns1123_label(name)
    assert stable_service_name(long_name) != canary_service_name(long_name)


@pytest.mark.parametrize("stack", STACKS)
def test_every_built_object_validates_against_the_upstream_schemas(stack: str, upstream_judge: Any) -> None:
    settings = _settings(stack)
    objects = [m for text in (PLAIN, FULL) for m in delivery_manifests(_service(text), settings).values()]
    assert {o["kind"] for o in objects} == {"Application", "Rollout", "Service", "AnalysisTemplate"}
    assert upstream_judge.errors(objects) == []


# ---------------------------------------------------------------- component (render)

APPLICATION = "kubernetes:argoproj.io/v1alpha1:Application"
ROLLOUT = "kubernetes:argoproj.io/v1alpha1:Rollout"
ANALYSIS_TEMPLATE = "kubernetes:argoproj.io/v1alpha1:AnalysisTemplate"
SERVICE = "kubernetes:core/v1:Service"
SERVICES_TEXT = SERVICES_FILE.read_text()
WITH_FULL = SERVICES_TEXT + FULL


def _of_type(resources: list[dict[str, Any]], type_token: str) -> dict[str, dict[str, Any]]:
    return {r["name"]: r for r in resources if r["type"] == type_token}


def _manifest(manifests: list[dict[str, Any]], kind: str, name: str) -> dict[str, Any]:
    found = [m for m in manifests if m["kind"] == kind and m["metadata"]["name"] == name]
    assert len(found) == 1, f"expected one {kind} {name}, found {len(found)}"
    return found[0]


def _services_of(stack: str) -> list[Service]:
    return parse_services(SERVICES_TEXT, "services.yaml").for_environment(stack)


@pytest.mark.parametrize("stack", STACKS)
def test_each_service_gets_one_delivery_with_its_application_and_a_retained_rollout(
    render_stack: RenderStack, stack: str
) -> None:
    resources, manifests = render_stack(stack)
    services = _services_of(stack)
    assert services
    components = _of_type(resources, TYPE)
    assert set(components) == {f"{s.name}-delivery" for s in services}
    rollouts = _of_type(resources, ROLLOUT)
    applications = _of_type(resources, APPLICATION)
    for s in services:
        rollout = rollouts[f"{s.name}-delivery-rollout"]
        assert rollout["parent"] == f"{s.name}-delivery"
        assert rollout["options"]["retain_on_delete"] is True
        assert rollout["options"]["protect"] is False
        assert {"crds-argo-rollouts-rollout", "platform-argo-rollouts"} <= set(rollout["options"]["depends_on"])
        application = applications[f"{s.name}-delivery-application"]
        assert application["options"]["protect"] is False
        assert {"crds-argo-cd-application", "platform-argo-cd"} <= set(application["options"]["depends_on"])
        app = _manifest(manifests, "Application", f"{s.name}-{stack}")
        assert app["spec"]["source"]["targetRevision"] == _settings(stack).helm_branch
        assert _manifest(manifests, "Rollout", s.name)["metadata"]["namespace"] == s.namespace
    # Nothing in any stack is protected: protect makes `pulumi destroy` fail.
    assert not [r["name"] for r in resources if r["options"]["protect"]]


def test_rendered_finalizer_in_dev_and_not_in_live(render_stack: RenderStack) -> None:
    for stack, expected in (("dev", [CASCADE_FINALIZER]), ("live", None)):
        _, manifests = render_stack(stack)
        for app in (m for m in manifests if m["kind"] == "Application"):
            assert app["metadata"].get("finalizers") == expected, (stack, app["metadata"]["name"])


@pytest.mark.parametrize("stack", STACKS)
def test_rendered_delivery_objects_validate(render_stack: RenderStack, stack: str, upstream_judge: Any) -> None:
    _, manifests = render_stack(stack, WITH_FULL)
    kinds = {"Application", "Rollout", "AnalysisTemplate"}
    objects = [m for m in manifests if m["kind"] in kinds
               or (m["kind"] == "Service" and m["metadata"]["name"] in {"ledger-stable", "ledger-canary"})]
    assert {o["kind"] for o in objects} == kinds | {"Service"}
    assert upstream_judge.errors(objects) == []


def test_traffic_services_and_analysis_template_are_retained_and_selectors_left_to_the_controller(
    render_stack: RenderStack,
) -> None:
    resources, manifests = render_stack("live", WITH_FULL)
    services = _of_type(resources, SERVICE)
    for name in ("ledger-delivery-canary-service", "ledger-delivery-stable-service"):
        svc = services[name]
        assert svc["parent"] == "ledger-delivery"
        assert svc["options"]["ignore_changes"] == list(SERVICE_IGNORE_CHANGES) == ["spec.selector"]
        assert svc["options"]["retain_on_delete"] is True and svc["options"]["protect"] is False
    template = _of_type(resources, ANALYSIS_TEMPLATE)["ledger-delivery-analysis-template"]
    assert template["options"]["retain_on_delete"] is True and template["options"]["protect"] is False
    assert {"crds-argo-rollouts-analysis-template", "platform-argo-rollouts"} <= set(
        template["options"]["depends_on"]
    )
    rollout = _of_type(resources, ROLLOUT)["ledger-delivery-rollout"]
    # The Rollout is created after the objects it names.
    assert {"ledger-delivery-analysis-template", "ledger-delivery-canary-service",
            "ledger-delivery-stable-service"} <= set(rollout["options"]["depends_on"])
    assert _manifest(manifests, "Service", "ledger-stable")["metadata"]["namespace"] == "payments"
    # Services of the services without traffic routing: none.
    assert not [n for n in services if n.startswith(("vbsiv-", "labeling-api-"))]
    assert not [n for n in _of_type(resources, ANALYSIS_TEMPLATE) if not n.startswith("ledger-")]


def test_the_rollout_side_waits_for_the_service_namespace(render_stack: RenderStack) -> None:
    resources, _ = render_stack("dev", WITH_FULL)
    for type_token in (ROLLOUT, ANALYSIS_TEMPLATE, SERVICE):
        for name, resource in _of_type(resources, type_token).items():
            if name.startswith("ledger-delivery-"):
                assert "namespaces-service-payments" in resource["options"]["depends_on"], name


@pytest.mark.parametrize("stack", ["dev", "live"])
def test_removing_a_service_leaves_its_rollout_side_retained(render_stack: RenderStack, stack: str) -> None:
    before, _ = render_stack(stack, WITH_FULL)
    after, _ = render_stack(stack)
    by_key = {(r["type"], r["name"]): r for r in before}
    removed = by_key.keys() - {(r["type"], r["name"]) for r in after}
    delivery = {key for key in removed if key[1].startswith("ledger-delivery")}
    assert delivery == {
        (TYPE, "ledger-delivery"),
        (APPLICATION, "ledger-delivery-application"),
        (ANALYSIS_TEMPLATE, "ledger-delivery-analysis-template"),
        (SERVICE, "ledger-delivery-canary-service"),
        (SERVICE, "ledger-delivery-stable-service"),
        (ROLLOUT, "ledger-delivery-rollout"),
    }
    # Everything that runs or routes the service stays in the cluster when Pulumi drops it ...
    for key in delivery - {(TYPE, "ledger-delivery"), (APPLICATION, "ledger-delivery-application")}:
        assert by_key[key]["options"]["retain_on_delete"] is True, key
    # ... and the Application's deletion cascades only where the stack says so.
    application = by_key[(APPLICATION, "ledger-delivery-application")]
    finalizers = application["inputs"]["metadata"].get("finalizers")
    assert (finalizers == [CASCADE_FINALIZER]) is _settings(stack).release.cascade_delete
    # The other services' delivery objects are untouched.
    after_by_key = {(r["type"], r["name"]): r for r in after}
    for key, resource in by_key.items():
        if key[1].startswith(("vbsiv-delivery", "labeling-api-delivery")):
            assert after_by_key[key] == resource, key



# ------------------------------------------------------- one Slack thread per release


def _threads(settings: Settings, on: bool = True) -> Settings:
    return settings.model_copy(update={"slack": settings.slack.model_copy(update={"threads": on})})


@pytest.mark.parametrize("text", [PLAIN, FULL])
def test_slack_threads_off_leave_the_subscriptions_as_they_were(text: str) -> None:
    service, settings = _service(text), _settings()
    assert application_manifest(service, settings) == application_manifest(service, _threads(settings, False))
    assert rollout_manifest(service, settings) == rollout_manifest(service, _threads(settings, False))


@pytest.mark.parametrize("text", [PLAIN, FULL])
def test_with_slack_threads_the_slack_subscriptions_become_webhook_subscriptions(text: str) -> None:
    service, settings = _service(text), _threads(_settings())
    from components import helm_values as hv

    for manifest, triggers in ((application_manifest(service, settings), hv.ARGOCD_TRIGGERS),
                               (rollout_manifest(service, settings), (*hv.ROLLOUTS_TRIGGERS,
                                                                      "on-rollout-step-completed"))):
        metadata = manifest["metadata"]
        assert metadata["labels"][OWN_CHANNEL_LABEL] == "true"  # out of the default channel's subscription
        assert metadata["annotations"] == {
            f"notifications.argoproj.io/subscribe.{t}.slack-thread": "" for t in sorted(triggers)}
        assert not any(k.endswith(".slack") for k in metadata["annotations"])
    # The service's own setting wins over the stack's.
    off = service.model_copy(update={"slack_threads": False})
    assert application_manifest(off, settings) == application_manifest(off, _settings())
