"""Tests for validate_manifests.py (run: python -m pytest -q test_validate_manifests.py)."""
from __future__ import annotations

import copy
import importlib.util
import json
import os
import sys

import pytest
import yaml

HERE = os.path.dirname(os.path.abspath(__file__))

from tests.checks import validate_manifests as vm

HAS_KV = importlib.util.find_spec("kubernetes_validate") is not None


def errors(problems):
    return [p for p in problems if p.severity == "error"]


def assert_valid(obj):
    probs = vm.validate_objects([obj])
    errs = errors(probs)
    assert not errs, "\n".join(map(str, errs))
    assert not any(p.severity == "skipped" for p in probs), "\n".join(map(str, probs))
    return probs


def assert_invalid(obj, path, fragment=""):
    errs = errors(vm.validate_objects([obj]))
    hits = [p for p in errs if p.path == path and fragment in p.message]
    assert hits, f"expected an error at {path!r} containing {fragment!r}, got:\n" + "\n".join(map(str, errs))
    return errs


# ----------------------------------------------------------------------------------------
# Objects that must pass
# ----------------------------------------------------------------------------------------

ROLLOUT = yaml.safe_load("""
apiVersion: argoproj.io/v1alpha1
kind: Rollout
metadata:
  name: web
  namespace: apps
  labels: {app.kubernetes.io/name: web}
spec:
  replicas: 5
  revisionHistoryLimit: 3
  selector:
    matchLabels: {app: web}
  template:
    metadata:
      labels: {app: web}
    spec:
      containers:
      - name: web
        image: ghcr.io/acme/web:1.2.3
        ports:
        - {name: http, containerPort: 8080, protocol: TCP}
        resources:
          requests: {cpu: 100m, memory: 128Mi}
          limits: {cpu: 1, memory: 512Mi}
        readinessProbe:
          httpGet: {path: /healthz, port: http}
  strategy:
    canary:
      canaryService: web-canary
      stableService: web-stable
      maxSurge: "25%"
      maxUnavailable: 0
      steps:
      - setWeight: 20
      - pause: {duration: 10m}
      - setWeight: 50
      - pause: {duration: 60}
      - analysis:
          templates:
          - templateName: success-rate
          args:
          - {name: service-name, value: web-canary}
      - setWeight: 100
      - pause: {}
""")

ANALYSIS_TEMPLATE = yaml.safe_load("""
apiVersion: argoproj.io/v1alpha1
kind: AnalysisTemplate
metadata: {name: success-rate}
spec:
  args:
  - name: service-name
  metrics:
  - name: success-rate
    interval: 1m
    count: 5
    successCondition: result[0] >= 0.95
    failureLimit: 2
    provider:
      prometheus:
        address: http://prometheus.monitoring:9090
        query: sum(rate(http_requests_total{service="{{args.service-name}}",code!~"5.."}[1m]))
""")

APPLICATION = yaml.safe_load("""
apiVersion: argoproj.io/v1alpha1
kind: Application
metadata:
  name: web
  namespace: argocd
  finalizers: [resources-finalizer.argocd.argoproj.io]
spec:
  project: platform
  source:
    repoURL: https://github.com/acme/deploy.git
    targetRevision: main
    path: apps/web
    helm:
      releaseName: web
      valueFiles: [values.yaml]
      valuesObject:
        replicaCount: 3
        image: {tag: "1.2.3"}
  destination:
    server: https://kubernetes.default.svc
    namespace: apps
  syncPolicy:
    automated:
      prune: true
      selfHeal: true
    syncOptions: [CreateNamespace=true, ServerSideApply=true]
    retry:
      limit: 5
      backoff: {duration: 5s, factor: 2, maxDuration: 3m}
""")

APPPROJECT = yaml.safe_load("""
apiVersion: argoproj.io/v1alpha1
kind: AppProject
metadata: {name: platform, namespace: argocd}
spec:
  description: Platform apps
  sourceRepos: ["https://github.com/acme/*"]
  destinations:
  - {server: https://kubernetes.default.svc, namespace: "*"}
  clusterResourceWhitelist:
  - {group: "*", kind: "*"}
""")

EVENTBUS = yaml.safe_load("""
apiVersion: argoproj.io/v1alpha1
kind: EventBus
metadata: {name: default, namespace: argo-events}
spec:
  jetstream:
    version: latest
    replicas: 3
""")

GITHUB_EVENTSOURCE = yaml.safe_load("""
apiVersion: argoproj.io/v1alpha1
kind: EventSource
metadata:
  name: github
  namespace: argo-events
spec:
  service:
    ports:
    - port: 12000
      targetPort: 12000
  github:
    app-repo:
      repositories:
      - owner: acme
        names: [app]
      webhook:
        endpoint: /push
        port: "12000"
        method: POST
        url: https://events.example.com
      events: [push, pull_request]
      apiToken: {name: github-access, key: token}
      webhookSecret: {name: github-access, key: secret}
      insecure: false
      active: true
      contentType: json
""")

SENSOR = yaml.safe_load("""
apiVersion: argoproj.io/v1alpha1
kind: Sensor
metadata:
  name: pr-merged
  namespace: argo-events
spec:
  template:
    serviceAccountName: operate-workflow-sa
  dependencies:
  - name: pr
    eventSourceName: github
    eventName: app-repo
    filters:
      dataLogicalOperator: and
      data:
      - path: body.action
        type: string
        value: [closed]
      - path: body.pull_request.merged
        type: bool
        value: ["true"]
      - path: body.pull_request.base.ref
        type: string
        value: [main]
  triggers:
  - template:
      name: build-and-deploy
      k8s:
        operation: create
        source:
          resource:
            apiVersion: argoproj.io/v1alpha1
            kind: Workflow
            metadata:
              generateName: build-and-deploy-
              namespace: argo
            spec:
              workflowTemplateRef:
                name: build-and-deploy
              arguments:
                parameters:
                - name: revision
                  value: ""
        parameters:
        - src:
            dependencyName: pr
            dataKey: body.pull_request.merge_commit_sha
          dest: spec.arguments.parameters.0.value
    retryStrategy:
      steps: 3
      duration: 10s
      factor: 2
""")

WORKFLOW_TEMPLATE = yaml.safe_load("""
apiVersion: argoproj.io/v1alpha1
kind: WorkflowTemplate
metadata:
  name: build-and-deploy
  namespace: argo
spec:
  entrypoint: main
  serviceAccountName: workflow-runner
  arguments:
    parameters:
    - name: revision
      value: main
  templates:
  - name: main
    dag:
      tasks:
      - name: checkout
        template: run
        arguments:
          parameters: [{name: cmd, value: "git checkout {{workflow.parameters.revision}}"}]
      - name: test
        template: run
        depends: checkout
        arguments:
          parameters: [{name: cmd, value: make test}]
      - name: build
        template: run
        depends: "checkout && test"
        arguments:
          parameters: [{name: cmd, value: make build}]
  - name: run
    inputs:
      parameters:
      - name: cmd
    container:
      image: alpine:3.20
      command: [sh, -c]
      args: ["{{inputs.parameters.cmd}}"]
      resources:
        requests: {cpu: 250m, memory: 256Mi}
""")


IMAGE_UPDATER = yaml.safe_load("""
apiVersion: argocd-image-updater.argoproj.io/v1alpha1
kind: ImageUpdater
metadata: {name: web, namespace: argocd}
spec:
  writeBackConfig:
    method: argocd
  applicationRefs:
  - namePattern: web
    images:
    - alias: web
      imageName: ghcr.io/acme/web
      commonUpdateSettings: {updateStrategy: semver}
      manifestTargets:
        helm: {name: image.repository, tag: image.tag}
""")


@pytest.mark.parametrize("obj", [ROLLOUT, ANALYSIS_TEMPLATE, APPLICATION, APPPROJECT, EVENTBUS,
                                 GITHUB_EVENTSOURCE, SENSOR, WORKFLOW_TEMPLATE, IMAGE_UPDATER],
                         ids=lambda o: o["kind"])
def test_valid_objects(obj):
    assert_valid(obj)


def test_all_valid_together_and_no_warnings():
    probs = vm.validate_objects([ROLLOUT, ANALYSIS_TEMPLATE, APPLICATION, APPPROJECT, EVENTBUS,
                                 GITHUB_EVENTSOURCE, SENSOR, WORKFLOW_TEMPLATE])
    assert probs == []


def test_sensor_embedded_workflow_resource_is_free_form():
    # k8s.source.resource is an arbitrary object: Workflow fields inside must not be flagged.
    s = copy.deepcopy(SENSOR)
    s["spec"]["triggers"][0]["template"]["k8s"]["source"]["resource"]["spec"]["anything"] = {"x": 1}
    assert_valid(s)


# ----------------------------------------------------------------------------------------
# Objects that must fail
# ----------------------------------------------------------------------------------------

def test_rollout_misspelled_steps():
    r = copy.deepcopy(ROLLOUT)
    r["spec"]["strategy"]["canary"]["step"] = r["spec"]["strategy"]["canary"].pop("steps")
    errs = assert_invalid(r, "spec.strategy.canary.step", 'unknown field "step"')
    assert 'did you mean "steps"' in errs[0].message


def test_rollout_replicas_wrong_type():
    r = copy.deepcopy(ROLLOUT)
    r["spec"]["replicas"] = "five"
    assert_invalid(r, "spec.replicas", "expected integer")


def test_rollout_unknown_spec_field():
    r = copy.deepcopy(ROLLOUT)
    r["spec"]["canaryStrategy"] = {}
    assert_invalid(r, "spec.canaryStrategy", "unknown field")


def test_rollout_bad_step_and_bad_duration():
    r = copy.deepcopy(ROLLOUT)
    r["spec"]["strategy"]["canary"]["steps"][0] = {"setWeigth": 20}
    r["spec"]["strategy"]["canary"]["steps"][1] = {"pause": {"duration": ["10m"]}}
    assert_invalid(r, "spec.strategy.canary.steps[0].setWeigth", "unknown field")
    assert_invalid(r, "spec.strategy.canary.steps[1].pause.duration", "expected integer or string")


def test_rollout_duplicate_container_names_list_map():
    r = copy.deepcopy(ROLLOUT)
    containers = r["spec"]["template"]["spec"]["containers"]
    containers.append(copy.deepcopy(containers[0]))
    assert_invalid(r, "spec.template.spec.containers[1]", "duplicate entry")


def test_rollout_wrong_version():
    r = copy.deepcopy(ROLLOUT)
    r["apiVersion"] = "argoproj.io/v1beta1"
    assert_invalid(r, "apiVersion", "not defined by CRD")


def test_application_missing_destination():
    a = copy.deepcopy(APPLICATION)
    del a["spec"]["destination"]
    assert_invalid(a, "spec.destination", "required")


def test_application_unknown_fields():
    a = copy.deepcopy(APPLICATION)
    a["spec"]["syncPolicy"]["automated"]["selfHealing"] = True
    a["specs"] = {}
    assert_invalid(a, "spec.syncPolicy.automated.selfHealing", "unknown field")
    assert_invalid(a, "specs", "unknown field")


def test_application_wrong_types():
    a = copy.deepcopy(APPLICATION)
    a["spec"]["syncPolicy"]["automated"]["prune"] = "yes"
    a["spec"]["syncPolicy"]["syncOptions"] = "CreateNamespace=true"
    assert_invalid(a, "spec.syncPolicy.automated.prune", "expected boolean")
    assert_invalid(a, "spec.syncPolicy.syncOptions", "expected array")


def test_metadata_name_rules():
    a = copy.deepcopy(APPLICATION)
    a["metadata"]["name"] = "Web_App"
    assert_invalid(a, "metadata.name", "RFC 1123 subdomain")
    b = copy.deepcopy(APPLICATION)
    del b["metadata"]["name"]
    assert_invalid(b, "metadata.name", "name or generateName is required")
    c = copy.deepcopy(APPLICATION)
    c["metadata"]["labels"] = {"team": "a b"}
    assert_invalid(c, 'metadata.labels.team', "invalid label value")
    d = copy.deepcopy(APPLICATION)
    d["metadata"]["lables"] = {}
    assert_invalid(d, "metadata.lables", "unknown field")


def test_generate_name_is_accepted():
    w = copy.deepcopy(WORKFLOW_TEMPLATE)
    del w["metadata"]["name"]
    w["metadata"]["generateName"] = "build-"
    assert_valid(w)


def test_eventsource_errors():
    e = copy.deepcopy(GITHUB_EVENTSOURCE)
    hook = e["spec"]["github"]["app-repo"]
    hook["webhook"]["port"] = 12000          # must be a string
    hook["webhookSecret"]["keyy"] = "x"      # typo
    del hook["webhook"]["endpoint"]          # required by the controller
    assert_invalid(e, 'spec.github.app-repo.webhook.port', "expected string")
    assert_invalid(e, 'spec.github.app-repo.webhookSecret.keyy', "unknown field")
    assert_invalid(e, 'spec.github.app-repo.webhook.endpoint', "required")


def test_eventsource_unknown_source_type():
    e = copy.deepcopy(GITHUB_EVENTSOURCE)
    e["spec"]["githubb"] = e["spec"].pop("github")
    assert_invalid(e, "spec.githubb", 'unknown field')


def test_sensor_errors():
    s = copy.deepcopy(SENSOR)
    dep = s["spec"]["dependencies"][0]
    dep["filters"]["data"][0].pop("type")
    dep["filters"]["data"][1]["value"] = True           # must be a list of strings
    s["spec"]["triggers"][0]["template"]["k8s"]["operation"] = "create"
    s["spec"]["triggers"][0]["template"]["k8s"]["parameter"] = []   # typo of parameters
    assert_invalid(s, "spec.dependencies[0].filters.data[0].type", "required")
    assert_invalid(s, "spec.dependencies[0].filters.data[1].value", "expected array")
    assert_invalid(s, "spec.triggers[0].template.k8s.parameter", "unknown field")


def test_sensor_needs_triggers():
    s = copy.deepcopy(SENSOR)
    s["spec"]["triggers"] = []
    assert_invalid(s, "spec.triggers", "")


def test_workflowtemplate_cel_rules():
    w = copy.deepcopy(WORKFLOW_TEMPLATE)
    task = w["spec"]["templates"][0]["dag"]["tasks"][1]
    task["dependencies"] = ["checkout"]                     # with depends: forbidden by CEL rule
    w["spec"]["templates"][1]["script"] = {"image": "alpine", "source": "echo"}  # container + script
    assert_invalid(w, "spec.templates[0].dag.tasks[1]", "cannot use both 'depends' and 'dependencies'")
    assert_invalid(w, "spec.templates", "at most one template type")


def test_workflowtemplate_unknown_and_type_errors():
    w = copy.deepcopy(WORKFLOW_TEMPLATE)
    w["spec"]["templates"][0]["dag"]["tasks"][0]["dependsOn"] = "x"
    w["spec"]["templates"][1]["container"]["args"] = "echo"
    w["spec"]["entrypoint"] = 3
    assert_invalid(w, "spec.templates[0].dag.tasks[0].dependsOn", "unknown field")
    assert_invalid(w, "spec.templates[1].container.args", "expected array")
    assert_invalid(w, "spec.entrypoint", "expected string")


def test_image_updater_cel_and_defaults():
    iu = copy.deepcopy(IMAGE_UPDATER)
    img = iu["spec"]["applicationRefs"][0]["images"][0]
    img["manifestTargets"]["kustomize"] = {"name": "ghcr.io/acme/web"}   # helm and kustomize: CEL rule
    img["imagesVerification"] = {}           # enabled defaults to true, so cosignKey is needed (CEL)
    assert_invalid(iu, "spec.applicationRefs[0].images[0].manifestTargets", "Exactly one of helm")
    assert_invalid(iu, "spec.applicationRefs[0].images[0].imagesVerification", "cosignKey")
    img["imagesVerification"] = {"enabled": False}
    del img["manifestTargets"]["kustomize"]
    assert_valid(iu)


def test_unknown_kind_is_skipped_unless_required():
    obj = {"apiVersion": "example.com/v1", "kind": "Widget", "metadata": {"name": "w"}}
    probs = vm.validate_objects([obj])
    assert [p.severity for p in probs] == ["skipped"]
    assert "no schema" in probs[0].message
    probs = vm.validate_objects([obj], require_schema=True)
    assert [p.severity for p in probs] == ["error"]


def test_missing_apiversion_and_kind():
    errs = errors(vm.validate_objects([{"metadata": {"name": "x"}}]))
    assert {p.path for p in errs} == {"apiVersion", "kind"}


# ----------------------------------------------------------------------------------------
# Core kinds (kubernetes-validate)
# ----------------------------------------------------------------------------------------

CORE_OBJECTS = yaml.safe_load_all("""
apiVersion: v1
kind: Namespace
metadata: {name: apps}
---
apiVersion: v1
kind: Secret
metadata: {name: github-access, namespace: argo-events}
type: Opaque
stringData: {token: abc, secret: def}
---
apiVersion: v1
kind: ConfigMap
metadata: {name: cfg, namespace: apps}
data: {key: value}
---
apiVersion: v1
kind: ServiceAccount
metadata: {name: operate-workflow-sa, namespace: argo-events}
---
apiVersion: v1
kind: Service
metadata: {name: web-canary, namespace: apps}
spec:
  selector: {app: web}
  ports: [{name: http, port: 80, targetPort: http}]
---
apiVersion: rbac.authorization.k8s.io/v1
kind: Role
metadata: {name: operate-workflow, namespace: argo}
rules:
- apiGroups: [argoproj.io]
  resources: [workflows]
  verbs: [create, get, list]
---
apiVersion: rbac.authorization.k8s.io/v1
kind: RoleBinding
metadata: {name: operate-workflow, namespace: argo}
roleRef: {apiGroup: rbac.authorization.k8s.io, kind: Role, name: operate-workflow}
subjects:
- {kind: ServiceAccount, name: operate-workflow-sa, namespace: argo-events}
---
apiVersion: rbac.authorization.k8s.io/v1
kind: ClusterRole
metadata: {name: "argo:reader"}
rules:
- {apiGroups: [""], resources: [pods], verbs: [get]}
---
apiVersion: networking.k8s.io/v1
kind: Ingress
metadata: {name: events, namespace: argo-events}
spec:
  ingressClassName: nginx
  rules:
  - host: events.example.com
    http:
      paths:
      - path: /push
        pathType: Prefix
        backend:
          service: {name: github-eventsource-svc, port: {number: 12000}}
---
apiVersion: apps/v1
kind: Deployment
metadata: {name: web, namespace: apps}
spec:
  replicas: 2
  selector: {matchLabels: {app: web}}
  template:
    metadata: {labels: {app: web}}
    spec:
      containers:
      - name: web
        image: nginx:1.27
""")
CORE_OBJECTS = list(CORE_OBJECTS)


@pytest.mark.skipif(not HAS_KV, reason="kubernetes-validate is not installed")
@pytest.mark.parametrize("obj", CORE_OBJECTS, ids=lambda o: o["kind"])
def test_core_valid(obj):
    assert_valid(obj)


@pytest.mark.skipif(not HAS_KV, reason="kubernetes-validate is not installed")
def test_core_invalid():
    dep = copy.deepcopy(CORE_OBJECTS[-1])
    dep["spec"]["replicas"] = "two"
    dep["spec"]["template"]["spec"]["containers"][0]["imagePullPolice"] = "Always"
    assert_invalid(dep, "spec.replicas", "expected integer")
    assert_invalid(dep, "spec.template.spec.containers[0].imagePullPolice", "unknown field")
    svc = copy.deepcopy(CORE_OBJECTS[4])
    svc["metadata"]["name"] = "1web"                      # Service names are DNS-1035 labels
    assert_invalid(svc, "metadata.name", "DNS-1035")


def test_core_without_kubernetes_validate(monkeypatch):
    monkeypatch.setitem(vm._CORES, "0.0-test", vm._CoreValidator(None))
    vm._CORES["0.0-test"].available = False
    probs = vm.validate_objects([CORE_OBJECTS[2]], k8s_version="0.0-test")
    assert [p.severity for p in probs] == ["warning"]
    assert "kubernetes-validate is not installed" in probs[0].message


# ----------------------------------------------------------------------------------------
# Schema conversion semantics, on a small synthetic CRD
# ----------------------------------------------------------------------------------------

TEST_CRD = """
apiVersion: apiextensions.k8s.io/v1
kind: CustomResourceDefinition
metadata: {name: gadgets.test.example.com}
spec:
  group: test.example.com
  names: {kind: Gadget, plural: gadgets}
  scope: Cluster
  versions:
  - name: v1
    served: true
    storage: true
    schema:
      openAPIV3Schema:
        type: object
        properties:
          spec:
            type: object
            required: [size]
            properties:
              size:
                x-kubernetes-int-or-string: true
                anyOf: [{type: integer}, {type: string}]
              note: {type: string, nullable: true}
              color: {type: string, enum: [red, blue]}
              free:
                type: object
                x-kubernetes-preserve-unknown-fields: true
              labels:
                type: object
                additionalProperties: {type: string}
              tags:
                type: array
                x-kubernetes-list-type: set
                items: {type: string}
              empty: {type: object}
              inner:
                type: object
                x-kubernetes-embedded-resource: true
                x-kubernetes-preserve-unknown-fields: true
              pair:
                type: object
                properties:
                  a: {type: string}
                  b: {type: string}
                x-kubernetes-validations:
                - rule: "!(has(self.a) && has(self.b))"
                  message: only one of a or b
"""


@pytest.fixture()
def crd_dir(tmp_path):
    (tmp_path / "gadget.yaml").write_text(TEST_CRD)
    return str(tmp_path)


def gadget(**spec):
    return {"apiVersion": "test.example.com/v1", "kind": "Gadget", "metadata": {"name": "g"},
            "spec": {"size": 1, **spec}}


def run(obj, crd_dir):
    return vm.validate_objects([obj], extra_crds=[crd_dir])


def test_synthetic_valid(crd_dir):
    obj = gadget(size="10%", note=None, color="red", free={"any": {"thing": [1]}}, labels={"a": "b"},
                 tags=["x", "y"], empty={}, inner={"apiVersion": "v1", "kind": "Pod", "whatever": 1},
                 pair={"a": "x"})
    assert run(obj, crd_dir) == []


def test_synthetic_errors(crd_dir):
    obj = gadget(size=1.5, color="green", labels={"a": 1}, tags=["x", "x"], empty={"x": 1},
                 inner={"kind": "Pod"}, pair={"a": "x", "b": "y"})
    errs = {(p.path, p.message.split(":")[0].split(" (")[0]) for p in errors(run(obj, crd_dir))}
    assert ("spec.size", "invalid type") in errs
    assert ("spec.color", "unsupported value \"green\"") in errs
    assert ("spec.labels.a", "invalid type") in errs
    assert ("spec.tags[1]", "duplicate entry [\"x\"]".replace('["x"]', '"x"')) in errs
    assert ("spec.empty.x", 'unknown field "x"') in errs
    assert ("spec.inner.apiVersion", "required field is missing") in errs
    assert ("spec.pair", "only one of a or b") in errs


def test_synthetic_required_and_null(crd_dir):
    obj = gadget()
    obj["spec"]["size"] = None
    obj["spec"]["color"] = None
    probs = run(obj, crd_dir)
    assert any(p.path == "spec.size" and p.message == "required field is null" and p.severity == "error"
               for p in probs)
    # null for an optional non-nullable field only warns (the API server drops it)
    assert any(p.path == "spec.color" and p.severity == "warning" for p in probs)


def test_synthetic_cluster_scoped_namespace_warns(crd_dir):
    obj = gadget()
    obj["metadata"]["namespace"] = "default"
    probs = run(obj, crd_dir)
    assert [p.severity for p in probs] == ["warning"]


# ----------------------------------------------------------------------------------------
# Files and command line
# ----------------------------------------------------------------------------------------

def test_cli_files_and_output(tmp_path, capsys):
    bad = copy.deepcopy(ROLLOUT)
    bad["spec"]["replicas"] = "five"
    (tmp_path / "a.yaml").write_text(yaml.safe_dump_all([APPLICATION, bad]))
    sub = tmp_path / "sub"
    sub.mkdir()
    (sub / "b.json").write_text(json.dumps([SENSOR, {"apiVersion": "x.io/v1", "kind": "Y",
                                                      "metadata": {"name": "y"}}]))
    (sub / "c.yml").write_text("apiVersion: v1\nkind: List\nitems:\n- " +
                               json.dumps(WORKFLOW_TEMPLATE) + "\n")
    rc = vm.main([str(tmp_path)])
    out = capsys.readouterr().out.strip().splitlines()
    assert rc == 1
    assert out[-1] == "5 objects, 3 valid, 1 invalid, 1 skipped"
    assert f"{tmp_path / 'a.yaml'}:1 Rollout/web: spec.replicas: invalid type: expected integer, " \
           'got string "five"' in out

    rc = vm.main([str(tmp_path / "sub"), "--json"])
    report = json.loads(capsys.readouterr().out)
    assert rc == 0
    assert report["summary"] == {"objects": 3, "valid": 2, "invalid": 0, "skipped": 1}


def test_yaml_duplicate_keys_and_timestamps(tmp_path):
    (tmp_path / "dup.yaml").write_text("apiVersion: v1\nkind: ConfigMap\nmetadata: {name: a}\nmetadata: {name: b}\n")
    probs, summary = vm.validate_paths([str(tmp_path / "dup.yaml")])
    assert summary.invalid == 1 and "duplicate key" in probs[0].message
    # Unquoted dates stay strings, as with sigs.k8s.io/yaml
    docs, _ = vm.load_documents(str(tmp_path / "dup.yaml").replace("dup", "dup"))
    (tmp_path / "ts.yaml").write_text("a: 2024-01-01\n")
    docs, _ = vm.load_documents(str(tmp_path / "ts.yaml"))
    assert docs[0][1] == {"a": "2024-01-01"}


def test_cel_subset():
    assert vm.cel_check("!has(self.a) || !has(self.b)", {"a": 1}) is True
    assert vm.cel_check("!has(self.a) || !has(self.b)", {"a": 1, "b": 2}) is False
    assert vm.cel_check("self.all(t, (has(t.x) ? 1 : 0) + (has(t.y) ? 1 : 0) <= 1)", [{"x": 1}, {"y": 1}]) is True
    assert vm.cel_check("self.name.matches('^[0-9]')", {"name": "1a"}) is True
    assert vm.cel_check("self == oldSelf", {}) is None          # transition rule: not judged
    assert vm.cel_check("self.map(x, x)", []) is None             # unsupported: not judged
