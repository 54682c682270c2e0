"""The policy pack (`policy/`): each policy on a good and a bad resource, and the real stacks.

- every check of `policy/release_policies.py` passes a compliant resource and reports
  the violation it exists for (through `violations()`, so dropping a check from the
  pack's table fails here too);
- the BuildKit exception is exactly the build namespace's WorkflowTemplate with the
  pinned `buildkit-ecr` image, nothing wider;
- every resource of every rendered stack passes every policy, options included;
- the Pulumi wiring (`policy/policy_pack.py`): all policies mandatory, unknown values
  tolerated, and the real analyzer process, spoken to over gRPC as the engine does,
  reports nothing on the rendered stacks and a mandatory violation on a bad resource.
"""

from __future__ import annotations

import copy
import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

ROOT = Path(__file__).resolve().parent.parent
POLICY = ROOT / "policy"
if str(POLICY) not in sys.path:
    sys.path.insert(0, str(POLICY))

import release_policies as rp  # noqa: E402

from components import sensors, workflows  # noqa: E402
from components.config import PROJECT, SETTINGS_KEY, STACKS, load_stack_settings  # noqa: E402
from components.versions import BUILDKIT_ECR  # noqa: E402

BUILD_NS = "argo-build"
REGISTRY = "111111111111.dkr.ecr.us-east-1.amazonaws.com/release-pipeline"
BUILDKIT = f"{REGISTRY}/buildkit-ecr:1.0.0"
TOOLS = f"{REGISTRY}/release-tools:1.1.0"
CTX = rp.Context(build_namespace=BUILD_NS, buildkit_image=BUILDKIT, cache_tag="buildcache")

WORKFLOW_TEMPLATE = "kubernetes:argoproj.io/v1alpha1:WorkflowTemplate"
WORKFLOW = "kubernetes:argoproj.io/v1alpha1:Workflow"
SENSOR = "kubernetes:argoproj.io/v1alpha1:Sensor"
EVENT_SOURCE = "kubernetes:argoproj.io/v1alpha1:EventSource"
APP_PROJECT = "kubernetes:argoproj.io/v1alpha1:AppProject"
ROLLOUT = "kubernetes:argoproj.io/v1alpha1:Rollout"
DEPLOYMENT = "kubernetes:apps/v1:Deployment"
ROLE = "kubernetes:rbac.authorization.k8s.io/v1:Role"
CLUSTER_ROLE = "kubernetes:rbac.authorization.k8s.io/v1:ClusterRole"
RELEASE = "kubernetes:helm.sh/v3:Release"
CONFIG_FILE = "kubernetes:yaml/v2:ConfigFile"
CRD = "kubernetes:apiextensions.k8s.io/v1:CustomResourceDefinition"
SECRET = "kubernetes:core/v1:Secret"
ECR = "aws:ecr/repository:Repository"
ROLE_POLICY = "aws:iam/rolePolicy:RolePolicy"
ECR_REPOSITORY_POLICY = "aws:ecr/repositoryPolicy:RepositoryPolicy"
ECR_REGISTRY_POLICY = "aws:ecr/registryPolicy:RegistryPolicy"
WEBHOOK = "github:index/repositoryWebhook:RepositoryWebhook"
DEPLOY_KEY = "github:index/repositoryDeployKey:RepositoryDeployKey"
RULESET = "github:index/repositoryRuleset:RepositoryRuleset"

RESTRICTED = {
    "allowPrivilegeEscalation": False,
    "capabilities": {"drop": ["ALL"]},
    "privileged": False,
    "readOnlyRootFilesystem": True,
    "runAsNonRoot": True,
    "seccompProfile": {"type": "RuntimeDefault"},
}
BUILDKIT_RELAXED = {
    "allowPrivilegeEscalation": True,
    "appArmorProfile": {"type": "Unconfined"},
    "capabilities": {"drop": ["ALL"]},
    "privileged": False,
    "runAsNonRoot": True,
    "seccompProfile": {"type": "Unconfined"},
}


def policy_messages(policy: str, resource_type: str, inputs: Any, options: Any = None,
                    context: rp.Context = CTX) -> list[str]:
    """The messages of one policy, found through the pack's table (as the pack runs it)."""
    return rp.violations(resource_type, inputs, options or {}, context).get(policy, [])


# ----------------------------------------------------------------- builders


def build_template(namespace: str = BUILD_NS, image: str = BUILDKIT, kind: str = "WorkflowTemplate") -> dict:
    """A build WorkflowTemplate shaped like the contract's: BuildKit relaxed, the rest restricted."""
    return {
        "apiVersion": "argoproj.io/v1alpha1",
        "kind": kind,
        "metadata": {"name": "svc-build", "namespace": namespace},
        "spec": {
            "arguments": {"parameters": [{"name": "revision"}]},
            "securityContext": {"runAsNonRoot": True, "runAsUser": 1000, "seccompProfile": {"type": "RuntimeDefault"}},
            "templates": [
                {
                    "name": "image-exists",
                    "container": {
                        "image": TOOLS,
                        "command": ["python3", "/opt/release-pipeline/scripts/image_exists.py"],
                        "env": [{"name": "REVISION", "value": "{{workflow.parameters.revision}}"}],
                        "securityContext": copy.deepcopy(RESTRICTED),
                    },
                },
                {
                    "name": "build",
                    "container": {
                        "name": "main",
                        "image": image,
                        "command": ["buildctl-daemonless.sh"],
                        "args": ["build", "--frontend", "dockerfile.v0"],
                        "env": [{"name": "BUILDKITD_FLAGS", "value": "--oci-worker-no-process-sandbox"}],
                        "securityContext": copy.deepcopy(BUILDKIT_RELAXED),
                        "volumeMounts": [{"name": "state", "mountPath": "/home/user/.local/share/buildkit"}],
                    },
                    "volumes": [{"name": "state", "emptyDir": {}}],
                },
            ],
        },
    }


def release_template() -> dict:
    """A release WorkflowTemplate: payload only in env values, a build Workflow by manifest."""
    child = {
        "apiVersion": "argoproj.io/v1alpha1",
        "kind": "Workflow",
        "metadata": {"generateName": "svc-build-", "namespace": BUILD_NS},
        "spec": {
            "workflowTemplateRef": {"name": "svc-build"},
            "arguments": {"parameters": [{"name": "revision", "value": "{{workflow.parameters.revision}}"}]},
        },
    }
    return {
        "apiVersion": "argoproj.io/v1alpha1",
        "kind": "WorkflowTemplate",
        "metadata": {"name": "svc-release", "namespace": "argo"},
        "spec": {
            "arguments": {"parameters": [{"name": p} for p in ("revision", *sorted(rp.PAYLOAD_PARAMETERS))]},
            "templates": [
                {
                    "name": "release",
                    "dag": {
                        "tasks": [
                            {"name": "build", "template": "build"},
                            {
                                "name": "notify",
                                "template": "notify",
                                "arguments": {
                                    "parameters": [{"name": "title", "value": "{{workflow.parameters.pr-title}}"}]
                                },
                                "when": "{{tasks.build.status}} == Succeeded",
                            },
                        ]
                    },
                },
                {
                    "name": "build",
                    "resource": {"action": "create", "manifest": yaml.safe_dump(child)},
                },
                {
                    "name": "notify",
                    "inputs": {"parameters": [{"name": "title"}]},
                    "script": {
                        "image": TOOLS,
                        "command": ["python3"],
                        "source": 'import os\nprint(os.environ["PR_TITLE_B64"], os.environ["AUTHOR_B64"])\n',
                        "env": [
                            {"name": "PR_TITLE_B64", "value": "{{inputs.parameters.title}}"},
                            {"name": "AUTHOR_B64", "value": "{{workflow.parameters.author}}"},
                            {"name": "REVISION", "value": "{{workflow.parameters.revision}}"},
                            {"name": "PR_NUMBER", "value": "{{workflow.parameters.pr-number}}"},
                            {"name": "TOKEN", "valueFrom": {"secretKeyRef": {"name": "slack", "key": "token"}}},
                        ],
                        "securityContext": copy.deepcopy(RESTRICTED),
                    },
                },
            ],
        },
    }


def sensor(**sources: dict) -> dict:
    """A Sensor's k8s trigger: the release's arguments from the merged PR (as components.sensors builds it)."""
    arguments = ["revision", "pr-number", "pr-title", "author", "repository", "trigger"]
    default = {
        "revision": {"dataKey": "body.pull_request.merge_commit_sha"},
        "pr-number": {"dataKey": "body.pull_request.number"},
        "pr-title": {"dataTemplate": "b64:{{ .Input.body.pull_request.title | toString | b64enc }}"},
        "author": {"dataTemplate": "b64:{{ .Input.body.pull_request.user.login | toString | b64enc }}"},
        "repository": {"dataTemplate": "b64:{{ .Input.body.repository.full_name | toString | b64enc }}"},
        "trigger": {"dataTemplate": "pull_request"},
    } | sources
    return {"spec": {
        "dependencies": [{"name": "merged", "filters": {"data": [
            {"path": "body.pull_request.merge_commit_sha", "type": "string", "value": ["^[0-9a-f]{40}$"]},
            {"path": "body.pull_request.number", "type": "string", "value": ["^[1-9][0-9]{0,9}$"]},
        ]}}],
        "triggers": [{"template": {"k8s": {
            "source": {"resource": {"spec": {"arguments": {"parameters": [{"name": a, "value": ""}
                                                                          for a in arguments]}}}},
            "parameters": [{"src": {"dependencyName": "merged", **default[a]},
                            "dest": f"spec.arguments.parameters.{i}.value"} for i, a in enumerate(arguments)],
        }}}],
    }}


def deployment(pod_spec: dict) -> dict:
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": "app", "namespace": "team"},
        "spec": {"template": {"metadata": {}, "spec": pod_spec}},
    }


def pod_spec(**extra: Any) -> dict:
    spec = {
        "securityContext": {"runAsNonRoot": True, "seccompProfile": {"type": "RuntimeDefault"}},
        "containers": [{"name": "app", "image": "app:1.0.0", "securityContext": copy.deepcopy(RESTRICTED)}],
    }
    spec.update(extra)
    return spec


def ecr_repository(**changes: Any) -> dict:
    inputs = {
        "name": "dev/datacollect-vbsiv",
        "encryptionConfigurations": [{"encryptionType": "AES256"}],
        "forceDelete": False,
        "imageScanningConfiguration": {"scanOnPush": True},
        "imageTagMutability": "IMMUTABLE_WITH_EXCLUSION",
        "imageTagMutabilityExclusionFilters": [{"filter": "buildcache", "filterType": "WILDCARD"}],
    }
    inputs.update(changes)
    return inputs


def event_source(**event_changes: Any) -> dict:
    event = {
        "active": True,
        "contentType": "json",
        "events": ["pull_request", "push"],
        "repositories": [{"owner": "Appen", "names": ["repo"]}],
        "webhook": {"endpoint": "/github/appen-repo", "method": "POST", "port": "12000",
                    "url": "https://events.dev.example.com"},
        "webhookSecret": {"name": "github-webhook-appen-repo", "key": "secret"},
    }
    event.update(event_changes)
    event = {k: v for k, v in event.items() if v is not None}
    return {
        "apiVersion": "argoproj.io/v1alpha1",
        "kind": "EventSource",
        "metadata": {"name": "github", "namespace": "argo-events"},
        "spec": {"eventBusName": "default", "github": {"appen-repo": event}},
    }


def webhook(**configuration: Any) -> dict:
    config = {
        "contentType": "json",
        "insecureSsl": False,
        "secret": "0123456789abcdef0123456789abcdef01234567",
        "url": "https://events.dev.example.com/github/appen-repo",
    }
    config.update(configuration)
    return {
        "active": True,
        "events": ["pull_request", "push"],
        "repository": "repo",
        "configuration": {k: v for k, v in config.items() if v is not None},
    }


def app_project(**spec_changes: Any) -> dict:
    spec = {
        "clusterResourceWhitelist": [],
        "destinations": [{"namespace": "datacollect", "server": "https://kubernetes.default.svc"}],
        "namespaceResourceBlacklist": [{"group": "argoproj.io", "kind": "*"}],
        "sourceNamespaces": [],
        "sourceRepos": ["git@github.com:Org/helm.git"],
    }
    spec.update(spec_changes)
    return {"apiVersion": "argoproj.io/v1alpha1", "kind": "AppProject",
            "metadata": {"name": "datacollect", "namespace": "argocd"}, "spec": spec}


def role(rules: list[dict]) -> dict:
    return {"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "Role",
            "metadata": {"name": "r", "namespace": "argo"}, "rules": rules}


GOOD_RULE = {"apiGroups": ["argoproj.io"], "resources": ["workflows"], "verbs": ["create", "get"]}


def argo_cd(cm: dict | None = None, params: dict | None = None, **values: Any) -> dict:
    base_cm = {"admin.enabled": "false", "users.anonymous.enabled": "false", "exec.enabled": "false"}
    base_cm.update(cm or {})
    return {"chart": "argo-cd", "name": "argocd", "namespace": "argocd",
            "values": {"configs": {"cm": base_cm, "params": params or {}}, **values}}


def argo_workflows(**server: Any) -> dict:
    base = {"authModes": ["sso"], "sso": {"enabled": True, "insecureSkipVerify": False}}
    base.update(server)
    return {"chart": "argo-workflows", "name": "argo-workflows", "namespace": "argo", "values": {"server": base}}


def iam_policy(*statements: dict) -> dict:
    return {"name": "push", "role": "r", "policy": json.dumps({"Version": "2012-10-17", "Statement": list(statements)})}


def ecr_grant(principal: Any = None, actions: list[str] | None = None) -> dict:
    """An ECR repository (or registry) policy as the program writes one: an account may pull."""
    statement = {
        "Sid": "PromoteToLive",
        "Effect": "Allow",
        "Principal": {"AWS": "arn:aws:iam::222222222222:root"} if principal is None else principal,
        "Action": actions or ["ecr:BatchGetImage", "ecr:GetDownloadUrlForLayer"],
    }
    return {"policy": json.dumps({"Version": "2012-10-17", "Statement": [statement]}),
            "repository": "integration/app"}


LOGIN = {"Effect": "Allow", "Action": ["ecr:GetAuthorizationToken"], "Resource": "*"}
PUSH = {"Effect": "Allow", "Action": ["ecr:PutImage", "ecr:BatchGetImage"],
        "Resource": ["arn:aws:ecr:us-east-1:111111111111:repository/dev/x"]}


def ruleset(**changes: Any) -> dict:
    inputs = {
        "bypassActors": [{"actorId": 1000001, "actorType": "Integration", "bypassMode": "always"}],
        "conditions": {"refName": {"excludes": [], "includes": ["refs/heads/development"]}},
        "enforcement": "active",
        "name": "release-pipeline-dev-gitops-branch",
        "repository": "helm",
        "rules": {"creation": True, "deletion": True, "nonFastForward": True},
        "target": "branch",
    }
    inputs.update(changes)
    return inputs


# --------------------------------------------------------------- the table

def test_the_pack_has_every_policy() -> None:
    assert [c.name for c in rp.CHECKS] == [
        "restricted-pods",
        "no-runtime-package-installs",
        "no-credentials-in-urls",
        "no-insecure-tls",
        "webhooks-have-secrets",
        "ecr-immutable-scanned-encrypted",
        "ecr-grants-name-principals",
        "retained-on-delete",
        "no-wildcard-rbac",
        "least-privilege-iam",
        "scoped-app-projects",
        "no-anonymous-uis",
        "payload-only-through-env",
        "gitops-writes-scoped",
    ]


GOOD: list[tuple[str, str, Any, dict]] = [
    ("build-template", WORKFLOW_TEMPLATE, build_template(), {}),
    ("release-template", WORKFLOW_TEMPLATE, release_template(), {}),
    ("deployment", DEPLOYMENT, deployment(pod_spec(volumes=[{"name": "c", "configMap": {"name": "c"}}])), {}),
    ("ecr", ECR, ecr_repository(), {"protect": False, "retain_on_delete": True}),
    ("ecr-immutable", ECR, ecr_repository(imageTagMutability="IMMUTABLE", imageTagMutabilityExclusionFilters=[]),
     {"protect": False}),
    ("crd-file", CONFIG_FILE, {"file": "https://raw.githubusercontent.com/x/y/v1/manifests/crds/a-crd.yaml"},
     {"protect": False, "retain_on_delete": True}),
    ("rollout", ROLLOUT, {"spec": {"workloadRef": {"kind": "Deployment", "name": "app"}}},
     {"protect": False, "retain_on_delete": True}),
    ("event-source", EVENT_SOURCE, event_source(), {}),
    ("webhook", WEBHOOK, webhook(), {}),
    ("webhook-secret-unknown", WEBHOOK, webhook(secret=rp.UNKNOWN), {}),
    ("role", ROLE, role([GOOD_RULE]), {}),
    ("iam", ROLE_POLICY, iam_policy(LOGIN, PUSH), {}),
    ("ecr-grant", ECR_REPOSITORY_POLICY, ecr_grant(), {}),
    ("ecr-grant-two-accounts", ECR_REPOSITORY_POLICY,
     ecr_grant({"AWS": ["arn:aws:iam::222222222222:root", "arn:aws:iam::333333333333:root"]}), {}),
    ("ecr-registry-grant", ECR_REGISTRY_POLICY, ecr_grant(), {}),
    ("ecr-grant-unknown", ECR_REPOSITORY_POLICY, {"policy": rp.UNKNOWN, "repository": "integration/app"}, {}),
    ("app-project", APP_PROJECT, app_project(), {}),
    ("argo-cd", RELEASE, argo_cd(), {}),
    ("argo-workflows", RELEASE, argo_workflows(), {}),
    ("argo-rollouts", RELEASE, {"chart": "argo-rollouts", "values": {"dashboard": {
        "enabled": True, "readonly": True, "ingress": {"enabled": False}, "service": {"type": "ClusterIP"}}}}, {}),
    ("deploy-key", DEPLOY_KEY, {"key": "ssh-ed25519 AAAA", "readOnly": True, "repository": "repo"}, {}),
    ("ruleset", RULESET, ruleset(), {}),
    ("sensor", SENSOR, sensor(), {}),
    ("secret-with-ssh-url", SECRET, {"stringData": {"url": "git@github.com:Org/helm.git", "type": "git"}}, {}),
]


@pytest.mark.parametrize(("resource_type", "inputs", "options"), [g[1:] for g in GOOD], ids=[g[0] for g in GOOD])
def test_compliant_resources_pass_every_policy(resource_type: str, inputs: Any, options: dict) -> None:
    assert rp.violations(resource_type, inputs, options, CTX) == {}


def _with(inputs: dict, path: str, value: Any) -> dict:
    """A copy of `inputs` with the dotted `path` (list indexes as numbers) set to `value`."""
    out = copy.deepcopy(inputs)
    keys = path.split(".")
    node: Any = out
    for key in keys[:-1]:
        node = node[int(key)] if isinstance(node, list) else node.setdefault(key, {})
    last = keys[-1]
    if isinstance(node, list):
        node[int(last)] = value
    else:
        node[last] = value
    return out


BK = "spec.templates.1.container"  # the BuildKit container of build_template()
TOOL = "spec.templates.0.container"  # the other container of build_template()

BAD: list[tuple[str, str, str, Any, str, dict, rp.Context]] = [
    # restricted-pods: the BuildKit exception, precisely
    ("buildkit-privileged", "restricted-pods", WORKFLOW_TEMPLATE,
     _with(build_template(), f"{BK}.securityContext.privileged", True), "privileged", {}, CTX),
    ("buildkit-outside-build-namespace", "restricted-pods", WORKFLOW_TEMPLATE,
     build_template(namespace="argo"), "seccompProfile Unconfined", {}, CTX),
    ("buildkit-other-tag", "restricted-pods", WORKFLOW_TEMPLATE,
     build_template(image=f"{REGISTRY}/buildkit-ecr:1.0.1"), "allowPrivilegeEscalation", {}, CTX),
    ("buildkit-other-registry", "restricted-pods", WORKFLOW_TEMPLATE,
     build_template(image="docker.io/moby/buildkit:rootless"), "appArmorProfile Unconfined", {}, CTX),
    ("buildkit-in-a-workflow", "restricted-pods", WORKFLOW, build_template(kind="Workflow"),
     "seccompProfile Unconfined", {}, CTX),
    ("buildkit-without-registry-setting", "restricted-pods", WORKFLOW_TEMPLATE, build_template(),
     "toolImages.registry", {}, rp.Context(buildkit_image=None)),
    ("other-container-relaxed", "restricted-pods", WORKFLOW_TEMPLATE,
     _with(build_template(), f"{TOOL}.securityContext", BUILDKIT_RELAXED), f"{TOOL.replace('.0.', '[0].')}",
     {}, CTX),
    ("pod-level-unconfined", "restricted-pods", WORKFLOW_TEMPLATE,
     _with(build_template(), "spec.securityContext.seccompProfile.type", "Unconfined"),
     "spec.securityContext.seccompProfile.type", {}, CTX),
    ("apparmor-annotation-other-container", "restricted-pods", DEPLOYMENT,
     _with(deployment(pod_spec()), "spec.template.metadata.annotations",
           {"container.apparmor.security.beta.kubernetes.io/app": "unconfined"}), "AppArmor unconfined", {}, CTX),
    # restricted-pods: privileged, docker-in-docker, host access
    ("privileged-deployment", "restricted-pods", DEPLOYMENT,
     _with(deployment(pod_spec()), "spec.template.spec.containers.0.securityContext.privileged", True),
     "spec.template.spec.containers[0].securityContext.privileged", {}, CTX),
    ("dind-sidecar", "restricted-pods", WORKFLOW_TEMPLATE,
     _with(build_template(), "spec.templates.0.sidecars", [{"name": "dind", "image": "docker:27.3-dind"}]),
     "docker-in-docker image", {}, CTX),
    ("docker-socket", "restricted-pods", WORKFLOW_TEMPLATE,
     _with(build_template(), f"{TOOL}.volumeMounts", [{"name": "sock", "mountPath": "/var/run/docker.sock"}]),
     "Docker socket", {}, CTX),
    ("host-path", "restricted-pods", DEPLOYMENT,
     deployment(pod_spec(volumes=[{"name": "h", "hostPath": {"path": "/var/lib"}}])), "hostPath", {}, CTX),
    ("host-network", "restricted-pods", DEPLOYMENT, deployment(pod_spec(hostNetwork=True)),
     "spec.template.spec.hostNetwork", {}, CTX),
    ("host-pid-in-sensor", "restricted-pods", SENSOR,
     {"spec": {"template": {"hostPID": True, "container": {"resources": {}}}}}, "host namespaces", {}, CTX),
    ("host-port", "restricted-pods", DEPLOYMENT,
     _with(deployment(pod_spec()), "spec.template.spec.containers.0.ports", [{"containerPort": 80, "hostPort": 80.0}]),
     "host ports", {}, CTX),
    ("added-capability", "restricted-pods", WORKFLOW_TEMPLATE,
     _with(build_template(), f"{BK}.securityContext.capabilities.add", ["SYS_ADMIN"]), "SYS_ADMIN", {}, CTX),
    ("root-user", "restricted-pods", EVENT_SOURCE,
     _with(event_source(), "spec.template.securityContext", {"runAsUser": 0.0}), "uid 0", {}, CTX),
    ("nfs-volume", "restricted-pods", WORKFLOW_TEMPLATE,
     _with(build_template(), "spec.volumes", [{"name": "n", "nfs": {"server": "x", "path": "/"}}]),
     "volume type nfs", {}, CTX),
    ("pod-spec-patch", "restricted-pods", WORKFLOW_TEMPLATE,
     _with(build_template(), "spec.podSpecPatch", '{"containers":[{"name":"main","securityContext":{}}]}'),
     "podSpecPatch", {}, CTX),
    ("privileged-pod-by-manifest", "restricted-pods", WORKFLOW_TEMPLATE,
     _with(release_template(), "spec.templates.1.resource.manifest", yaml.safe_dump(
         {"kind": "Pod", "spec": {"containers": [{"image": "x", "securityContext": {"privileged": True}}]}})),
     "manifest", {}, CTX),
    ("buildkit-by-manifest-workflow", "restricted-pods", WORKFLOW_TEMPLATE,
     _with(release_template(), "spec.templates.1.resource.manifest", yaml.safe_dump(build_template(kind="Workflow"))),
     "seccompProfile Unconfined", {}, CTX),
    ("privileged-unparseable-manifest", "restricted-pods", WORKFLOW_TEMPLATE,
     _with(release_template(), "spec.templates.1.resource.manifest",
           "kind: Pod\nspec: {containers: [{securityContext: {privileged: true}, name: {{x}}}]}"),
     "privileged container", {}, CTX),
    # no-runtime-package-installs
    ("apk-add", "no-runtime-package-installs", WORKFLOW_TEMPLATE,
     _with(build_template(), f"{TOOL}.command", ["sh", "-c", "apk add --no-cache git && python3 x.py"]),
     "apk add", {}, CTX),
    ("apt-get-install", "no-runtime-package-installs", WORKFLOW_TEMPLATE,
     _with(build_template(), f"{TOOL}.args", ["apt-get -y install curl"]), "apt-get install", {}, CTX),
    ("pip-install-in-script", "no-runtime-package-installs", WORKFLOW_TEMPLATE,
     _with(release_template(), "spec.templates.2.script.source", "pip install requests\npython3 x.py\n"),
     "spec.templates[2].script.source", {}, CTX),
    ("npm-install", "no-runtime-package-installs", DEPLOYMENT,
     _with(deployment(pod_spec()), "spec.template.spec.containers.0.command", ["npm", "install"]),
     "npm install", {}, CTX),
    ("yum-install", "no-runtime-package-installs", SENSOR,
     {"spec": {"template": {"container": {"args": ["yum", "install", "-y", "jq"]}}}}, "yum/dnf install", {}, CTX),
    ("curl-pipe-sh", "no-runtime-package-installs", WORKFLOW_TEMPLATE,
     _with(build_template(), f"{TOOL}.command", ["sh", "-c", "curl -fsSL https://get.example.com | sh"]),
     "curl ... | sh", {}, CTX),
    # no-credentials-in-urls
    ("user-token-url", "no-credentials-in-urls", SECRET,
     {"stringData": {"url": "https://bot:ghp_abcdef123456@github.com/Org/helm.git"}}, "user:password@", {}, CTX),
    ("x-access-token", "no-credentials-in-urls", WORKFLOW_TEMPLATE,
     _with(build_template(), f"{TOOL}.env", [{"name": "GIT_AUTH", "value": "basic x-access-token:abc"}]),
     "x-access-token", {}, CTX),
    ("token-query", "no-credentials-in-urls", WEBHOOK,
     webhook(url="https://events.dev.example.com/github/x?token=abc123"), "query string", {}, CTX),
    ("oauth2-credential", "no-credentials-in-urls", WORKFLOW_TEMPLATE,
     _with(build_template(), f"{TOOL}.args", ["git", "clone", "oauth2:glpat-x@gitlab.example.com/o/r.git"]),
     "oauth2:", {}, CTX),
    # no-insecure-tls
    ("webhook-insecure-ssl", "no-insecure-tls", WEBHOOK, webhook(insecureSsl=True),
     "configuration.insecureSsl", {}, CTX),
    ("event-source-insecure", "no-insecure-tls", EVENT_SOURCE, event_source(insecure=True), "insecure", {}, CTX),
    ("sso-skip-verify", "no-insecure-tls", RELEASE,
     argo_workflows(sso={"enabled": True, "insecureSkipVerify": True}), "insecureSkipVerify", {}, CTX),
    ("argocd-server-insecure", "no-insecure-tls", RELEASE,
     argo_cd(params={"server.insecure": "true"}), "server.insecure", {}, CTX),
    # webhooks-have-secrets
    ("webhook-without-secret", "webhooks-have-secrets", WEBHOOK, webhook(secret=None), "configuration.secret",
     {}, CTX),
    ("webhook-empty-secret", "webhooks-have-secrets", WEBHOOK, webhook(secret=""), "configuration.secret", {}, CTX),
    ("webhook-plain-http", "webhooks-have-secrets", WEBHOOK, webhook(url="http://events.example.com/x"),
     "https://", {}, CTX),
    ("event-without-secret", "webhooks-have-secrets", EVENT_SOURCE, event_source(webhookSecret=None),
     "spec.github.appen-repo.webhookSecret", {}, CTX),
    ("event-insecure", "webhooks-have-secrets", EVENT_SOURCE, event_source(insecure=True),
     "spec.github.appen-repo.insecure", {}, CTX),
    ("event-api-token", "webhooks-have-secrets", EVENT_SOURCE,
     event_source(apiToken={"name": "github-token", "key": "token"}), "apiToken", {}, CTX),
    ("generic-webhook-without-auth", "webhooks-have-secrets", EVENT_SOURCE,
     {"spec": {"webhook": {"hook": {"endpoint": "/x", "port": "12000", "method": "POST"}}}},
     "spec.webhook.hook.authSecret", {}, CTX),
    # ecr-immutable-scanned-encrypted
    ("ecr-mutable", "ecr-immutable-scanned-encrypted", ECR,
     ecr_repository(imageTagMutability="MUTABLE", imageTagMutabilityExclusionFilters=[]), "MUTABLE", {}, CTX),
    ("ecr-mutability-unset", "ecr-immutable-scanned-encrypted", ECR,
     ecr_repository(imageTagMutability=None, imageTagMutabilityExclusionFilters=None), "unset", {}, CTX),
    ("ecr-wildcard-exclusion", "ecr-immutable-scanned-encrypted", ECR,
     ecr_repository(imageTagMutabilityExclusionFilters=[{"filter": "*", "filterType": "WILDCARD"}]),
     "only the build cache tag", {}, CTX),
    ("ecr-two-exclusions", "ecr-immutable-scanned-encrypted", ECR,
     ecr_repository(imageTagMutabilityExclusionFilters=[{"filter": "buildcache", "filterType": "WILDCARD"},
                                                        {"filter": "latest", "filterType": "WILDCARD"}]),
     "2 filter", {}, CTX),
    ("ecr-latest-excluded", "ecr-immutable-scanned-encrypted", ECR,
     ecr_repository(imageTagMutabilityExclusionFilters=[{"filter": "latest", "filterType": "WILDCARD"}]),
     "'buildcache'", {}, CTX),
    ("ecr-no-scan", "ecr-immutable-scanned-encrypted", ECR,
     ecr_repository(imageScanningConfiguration={"scanOnPush": False}), "scanOnPush", {}, CTX),
    ("ecr-scan-unset", "ecr-immutable-scanned-encrypted", ECR,
     ecr_repository(imageScanningConfiguration=None), "scanOnPush", {}, CTX),
    ("ecr-no-encryption", "ecr-immutable-scanned-encrypted", ECR,
     ecr_repository(encryptionConfigurations=[]), "encryptionConfigurations", {}, CTX),
    # retained-on-delete
    ("ecr-protected", "retained-on-delete", ECR, ecr_repository(), "options.protect",
     {"protect": True, "retain_on_delete": True}, CTX),
    ("ecr-not-retained", "retained-on-delete", ECR, ecr_repository(), "options.retain_on_delete",
     {"protect": False, "retain_on_delete": False}, CTX),
    ("ecr-force-delete", "retained-on-delete", ECR, ecr_repository(forceDelete=True), "forceDelete",
     {"protect": False}, CTX),
    ("crd-file-not-retained", "retained-on-delete", CONFIG_FILE,
     {"file": "https://raw.githubusercontent.com/argoproj/argo-cd/v3.4.4/manifests/crds/application-crd.yaml"},
     "retain_on_delete", {"protect": False, "retain_on_delete": False}, CTX),
    ("crd-protected", "retained-on-delete", CRD, {"metadata": {"name": "workflows.argoproj.io"}},
     "options.protect", {"protect": True}, CTX),
    ("rollout-not-retained", "retained-on-delete", ROLLOUT, {"spec": {}}, "retain_on_delete",
     {"retain_on_delete": False}, CTX),
    # no-wildcard-rbac
    ("rbac-star-verbs", "no-wildcard-rbac", ROLE, role([{**GOOD_RULE, "verbs": ["*"]}]), "rules[0].verbs", {}, CTX),
    ("rbac-star-resources", "no-wildcard-rbac", ROLE, role([GOOD_RULE, {**GOOD_RULE, "resources": ["pods/*"]}]),
     "rules[1].resources", {}, CTX),
    ("rbac-star-groups", "no-wildcard-rbac", CLUSTER_ROLE, role([{**GOOD_RULE, "apiGroups": ["*"]}]),
     "rules[0].apiGroups", {}, CTX),
    ("rbac-star-urls", "no-wildcard-rbac", CLUSTER_ROLE, role([{"nonResourceURLs": ["*"], "verbs": ["get"]}]),
     "nonResourceURLs", {}, CTX),
    # least-privilege-iam
    ("iam-action-wildcard", "least-privilege-iam", ROLE_POLICY,
     iam_policy(LOGIN, {**PUSH, "Action": ["ecr:*"]}), "Statement[1].Action", {}, CTX),
    ("iam-push-anywhere", "least-privilege-iam", ROLE_POLICY,
     iam_policy({**PUSH, "Resource": "*"}), "Statement[0].Resource", {}, CTX),
    ("iam-not-action", "least-privilege-iam", ROLE_POLICY,
     iam_policy({"Effect": "Allow", "NotAction": ["iam:*"], "Resource": ["arn:x"]}), "NotAction", {}, CTX),
    # ecr-grants-name-principals
    ("ecr-grant-anyone", "ecr-grants-name-principals", ECR_REPOSITORY_POLICY, ecr_grant("*"),
     "Statement[0].Principal", {}, CTX),
    ("ecr-grant-any-aws", "ecr-grants-name-principals", ECR_REPOSITORY_POLICY, ecr_grant({"AWS": "*"}),
     "Statement[0].Principal", {}, CTX),
    ("ecr-grant-star-in-list", "ecr-grants-name-principals", ECR_REGISTRY_POLICY,
     ecr_grant({"AWS": ["arn:aws:iam::222222222222:root", "*"]}), "Statement[0].Principal", {}, CTX),
    ("ecr-grant-not-principal", "ecr-grants-name-principals", ECR_REPOSITORY_POLICY,
     {"policy": json.dumps({"Statement": [{"Effect": "Allow", "NotPrincipal": {"AWS": "arn:aws:iam::1:root"},
                                           "Action": ["ecr:BatchGetImage"]}]})}, "NotPrincipal", {}, CTX),
    ("ecr-grant-action-wildcard", "ecr-grants-name-principals", ECR_REPOSITORY_POLICY,
     ecr_grant(actions=["ecr:*"]), "Statement[0].Action", {}, CTX),
    # scoped-app-projects
    ("project-any-repo", "scoped-app-projects", APP_PROJECT, app_project(sourceRepos=["*"]),
     "spec.sourceRepos[0]", {}, CTX),
    ("project-repo-pattern", "scoped-app-projects", APP_PROJECT,
     app_project(sourceRepos=["git@github.com:Org/helm.git", "https://github.com/Org/*"]), "spec.sourceRepos[1]",
     {}, CTX),
    ("project-any-namespace", "scoped-app-projects", APP_PROJECT,
     app_project(destinations=[{"namespace": "*", "server": "https://kubernetes.default.svc"}]),
     "spec.destinations[0].namespace", {}, CTX),
    ("project-any-cluster", "scoped-app-projects", APP_PROJECT,
     app_project(destinations=[{"namespace": "datacollect", "server": "*"}]), "spec.destinations[0].server", {}, CTX),
    ("project-cluster-resources", "scoped-app-projects", APP_PROJECT,
     app_project(clusterResourceWhitelist=[{"group": "", "kind": "Namespace"}]), "clusterResourceWhitelist", {}, CTX),
    # no-anonymous-uis
    ("argocd-anonymous", "no-anonymous-uis", RELEASE, argo_cd({"users.anonymous.enabled": "true"}),
     "users.anonymous.enabled", {}, CTX),
    ("argocd-admin-by-default", "no-anonymous-uis", RELEASE,
     {"chart": "argo/argo-cd", "values": {"configs": {"cm": {"users.anonymous.enabled": "false"}}}},
     "admin.enabled", {}, CTX),
    ("argocd-admin", "no-anonymous-uis", RELEASE, argo_cd({"admin.enabled": True}), "admin.enabled", {}, CTX),
    ("argocd-disable-auth", "no-anonymous-uis", RELEASE, argo_cd(server={"extraArgs": ["--disable-auth"]}),
     "--disable-auth", {}, CTX),
    ("workflows-server-auth", "no-anonymous-uis", RELEASE, argo_workflows(authModes=["sso", "server"]),
     "authModes", {}, CTX),
    ("workflows-server-auth-arg", "no-anonymous-uis", RELEASE, argo_workflows(extraArgs=["--auth-mode=server"]),
     "--auth-mode=server", {}, CTX),
    ("rollouts-dashboard-ingress", "no-anonymous-uis", RELEASE,
     {"chart": "argo-rollouts", "values": {"dashboard": {"enabled": True, "ingress": {"enabled": True}}}},
     "dashboard.ingress", {}, CTX),
    # payload-only-through-env
    ("payload-in-script", "payload-only-through-env", WORKFLOW_TEMPLATE,
     _with(release_template(), "spec.templates.2.script.source", 'print("{{workflow.parameters.pr-title}}")\n'),
     "spec.templates[2].script.source", {}, CTX),
    ("payload-in-args", "payload-only-through-env", WORKFLOW_TEMPLATE,
     _with(release_template(), "spec.templates.2.script.args", ["--author", "{{workflow.parameters.author}}"]),
     "spec.templates[2].script.args[1]", {}, CTX),
    ("payload-in-when", "payload-only-through-env", WORKFLOW_TEMPLATE,
     _with(release_template(), "spec.templates.0.dag.tasks.1.when", "{{workflow.parameters.trigger}} == push"),
     "when", {}, CTX),
    ("payload-expression", "payload-only-through-env", WORKFLOW_TEMPLATE,
     _with(release_template(), "spec.templates.2.script.command", ["echo", "{{=workflow.parameters['pr-number']}}"]),
     "script.command[1]", {}, CTX),
    ("payload-carried-to-input", "payload-only-through-env", WORKFLOW_TEMPLATE,
     _with(release_template(), "spec.templates.2.script.source", "print('{{inputs.parameters.title}}')\n"),
     "inputs.parameters", {}, CTX),
    ("payload-carried-twice", "payload-only-through-env", WORKFLOW_TEMPLATE,
     _with(_with(release_template(), "spec.templates.2.inputs.parameters", [
         {"name": "title"}, {"name": "headline", "value": "{{inputs.parameters.title}}"}]),
           "spec.templates.2.script.source", "echo {{inputs.parameters.headline}}"),
     "spec.templates[2].script.source", {}, CTX),
    ("payload-all-parameters", "payload-only-through-env", WORKFLOW_TEMPLATE,
     _with(release_template(), "spec.templates.2.script.args", ["{{workflow.parameters.json}}"]),
     "script.args[0]", {}, CTX),
    ("payload-in-manifest", "payload-only-through-env", WORKFLOW_TEMPLATE,
     _with(release_template(), "spec.templates.1.resource.manifest",
           "kind: ConfigMap\ndata:\n  title: '{{workflow.parameters.pr-title}}'\n"), "resource.manifest", {}, CTX),
    ("payload-in-sensor-workflow", "payload-only-through-env", SENSOR,
     {"spec": {"triggers": [{"template": {"k8s": {"source": {"resource": {"metadata": {
         "labels": {"author": "{{workflow.parameters.author}}"}}}}}}}]}}, "labels.author", {}, CTX),
    ("payload-env-not-marked-encoded", "payload-only-through-env", WORKFLOW_TEMPLATE,
     _with(release_template(), "spec.templates.2.script.env.1.name", "AUTHOR"), "script.env[1]: AUTHOR", {}, CTX),
    ("payload-env-inside-text", "payload-only-through-env", WORKFLOW_TEMPLATE,
     _with(release_template(), "spec.templates.2.script.env.0.value", "title: {{inputs.parameters.title}}"),
     "whole value", {}, CTX),
    ("secret-before-payload", "payload-only-through-env", WORKFLOW_TEMPLATE,
     _with(release_template(), "spec.templates.2.script.env", [
         {"name": "TOKEN", "valueFrom": {"secretKeyRef": {"name": "slack", "key": "token"}}},
         {"name": "PR_TITLE_B64", "value": "{{inputs.parameters.title}}"}]), "script.env[0]: TOKEN comes from", {},
     CTX),
    ("secret-before-any-substitution", "payload-only-through-env", WORKFLOW_TEMPLATE,
     _with(release_template(), "spec.templates.2.script.env", [
         {"name": "TOKEN", "valueFrom": {"secretKeyRef": {"name": "slack", "key": "token"}}},
         {"name": "STATUS", "value": "{{workflow.status}}"}]), "Secrets go last", {}, CTX),
    ("sensor-plain-title", "payload-only-through-env", SENSOR,
     sensor(**{"pr-title": {"dataKey": "body.pull_request.title"}}), "argument pr-title is payload text", {}, CTX),
    ("sensor-title-template-not-encoded", "payload-only-through-env", SENSOR,
     sensor(**{"pr-title": {"dataTemplate": "{{ .Input.body.pull_request.title }}"}}), "pr-title", {}, CTX),
    ("sensor-plain-unfiltered", "payload-only-through-env", SENSOR,
     sensor(**{"trigger": {"dataKey": "body.action"}}), "no string filter", {}, CTX),
    # gitops-writes-scoped
    ("write-deploy-key", "gitops-writes-scoped", DEPLOY_KEY, {"key": "ssh-ed25519 A", "readOnly": False},
     "readOnly", {}, CTX),
    ("deploy-key-read-only-unset", "gitops-writes-scoped", DEPLOY_KEY, {"key": "ssh-ed25519 A"}, "readOnly", {}, CTX),
    ("ruleset-two-apps", "gitops-writes-scoped", RULESET, ruleset(bypassActors=[
        {"actorId": 1, "actorType": "Integration", "bypassMode": "always"},
        {"actorId": 2, "actorType": "Integration", "bypassMode": "always"}]), "2 Integrations", {}, CTX),
    ("ruleset-pattern", "gitops-writes-scoped", RULESET,
     ruleset(conditions={"refName": {"includes": ["refs/heads/*"], "excludes": []}}), "refName.includes", {}, CTX),
    ("ruleset-two-branches", "gitops-writes-scoped", RULESET, ruleset(conditions={"refName": {
        "includes": ["refs/heads/development", "refs/heads/main"], "excludes": []}}), "exactly one", {}, CTX),
    ("ruleset-all", "gitops-writes-scoped", RULESET,
     ruleset(conditions={"refName": {"includes": ["~ALL"], "excludes": []}}), "~ALL", {}, CTX),
    ("ruleset-evaluate-only", "gitops-writes-scoped", RULESET, ruleset(enforcement="evaluate"), "enforcement",
     {}, CTX),
]


@pytest.mark.parametrize(
    ("policy", "resource_type", "inputs", "fragment", "options", "context"),
    [b[1:] for b in BAD],
    ids=[b[0] for b in BAD],
)
def test_each_policy_reports_its_violation(
    policy: str, resource_type: str, inputs: Any, fragment: str, options: dict, context: rp.Context
) -> None:
    messages = policy_messages(policy, resource_type, inputs, options, context)
    assert messages, f"{policy} found nothing in {resource_type}"
    assert any(fragment in m for m in messages), messages


def test_every_policy_has_a_bad_case() -> None:
    assert {b[1] for b in BAD} == {c.name for c in rp.CHECKS}


def test_buildkit_exception_covers_exactly_its_three_relaxations() -> None:
    # All three relaxations in the good build template are allowed, none reported...
    assert policy_messages("restricted-pods", WORKFLOW_TEMPLATE, build_template()) == []
    # ...and each of them is a violation on any other container of the same template.
    for field, value in (
        ("allowPrivilegeEscalation", True),
        ("seccompProfile", {"type": "Unconfined"}),
        ("appArmorProfile", {"type": "Unconfined"}),
    ):
        bad = _with(build_template(), f"{TOOL}.securityContext.{field}", value)
        assert any(field in m for m in policy_messages("restricted-pods", WORKFLOW_TEMPLATE, bad)), field
    # AppArmor by annotation: allowed for the BuildKit container by name, not for another.
    annotated = _with(build_template(), "spec.templates.1.metadata",
                      {"annotations": {"container.apparmor.security.beta.kubernetes.io/main": "unconfined"}})
    assert policy_messages("restricted-pods", WORKFLOW_TEMPLATE, annotated) == []
    other = _with(annotated, "spec.templates.1.container.name", "builder")
    assert policy_messages("restricted-pods", WORKFLOW_TEMPLATE, other)


def test_unknown_values_are_left_for_up() -> None:
    # During a preview the namespace may be an Output not known yet: nothing is
    # reported then; `pulumi up` runs the policy again on the known value.
    unknown_namespace = _with(build_template(namespace="argo"), "metadata.namespace", rp.UNKNOWN)
    assert policy_messages("restricted-pods", WORKFLOW_TEMPLATE, unknown_namespace) == []
    assert policy_messages("webhooks-have-secrets", WEBHOOK, webhook(secret=rp.UNKNOWN)) == []
    # Unknowns elsewhere do not hide what is known.
    still_bad = _with(unknown_namespace, f"{BK}.securityContext.privileged", True)
    assert policy_messages("restricted-pods", WORKFLOW_TEMPLATE, still_bad)


def test_messages_never_repeat_a_credential() -> None:
    token = "ghp_0123456789abcdefSECRET"
    messages = policy_messages(
        "no-credentials-in-urls", SECRET, {"stringData": {"url": f"https://bot:{token}@github.com/o/r"}}
    )
    assert messages and all(token not in m and "bot:" not in m for m in messages)


@pytest.mark.parametrize(
    "text",
    ["pip list", "npm test", "go test ./...", "python3 -m pytest -q", "echo apk", "curl -fsSL https://x -o f",
     "make install-tests"],
)
def test_commands_that_install_nothing_pass(text: str) -> None:
    inputs = _with(build_template(), f"{TOOL}.command", ["sh", "-c", text])
    assert policy_messages("no-runtime-package-installs", WORKFLOW_TEMPLATE, inputs) == []


def test_retention_is_judged_on_what_the_engine_shows() -> None:
    # Under Pulumi, options carry no retain_on_delete: the check then judges protect only.
    assert policy_messages("retained-on-delete", ECR, ecr_repository(), {"protect": False}) == []
    assert policy_messages("retained-on-delete", ECR, ecr_repository(), {"protect": True})
    # Only the kinds that hold data are held to it.
    assert policy_messages("retained-on-delete", SECRET, {}, {"protect": False, "retain_on_delete": False}) == []


def test_crd_schemas_are_not_mistaken_for_pods() -> None:
    # A CRD's OpenAPI schema names pod fields as properties (hostPath, podSpecPatch, ...).
    schema = {"properties": {"hostPath": {"type": "object"}, "podSpecPatch": {"type": "string"},
                             "description": {"type": "string", "description": "mount /var/run/docker.sock"}}}
    crd = {"spec": {"versions": [{"name": "v1alpha1", "schema": {"openAPIV3Schema": schema}}]}}
    assert rp.violations(CRD, crd, {"protect": False}, CTX) == {}


# ----------------------------------------------------------- stack context


def pulumi_config(stack: str) -> dict[str, str]:
    """The stack's config as the engine passes it to the pack (`PULUMI_CONFIG`): objects as JSON."""
    config = yaml.safe_load((ROOT / f"Pulumi.{stack}.yaml").read_text(encoding="utf-8"))["config"]
    return {key: value if isinstance(value, str) else json.dumps(value) for key, value in config.items()}


def test_pack_constants_are_the_programs() -> None:
    assert (rp.PROJECT, rp.SETTINGS_KEY) == (PROJECT, SETTINGS_KEY)
    assert rp.ENCODED_PARAMETERS == set(sensors.ENCODED_ARGUMENTS) == set(workflows.ENCODED_PARAMETERS)
    assert set(workflows.PAYLOAD_PARAMETERS) == rp.PAYLOAD_PARAMETERS
    assert rp.ENCODED_ENV_SUFFIX == workflows.ENCODED_ENV_SUFFIX
    for source in sensors.PR_ARGUMENTS.values():
        if isinstance(source, sensors.Encoded):
            assert rp.ENCODED_SENSOR_TEMPLATE.match(source.template)
    assert (BUILDKIT_ECR.name, BUILDKIT_ECR.version) == (rp.BUILDKIT_IMAGE_NAME, rp.BUILDKIT_IMAGE_VERSION)


@pytest.mark.parametrize("stack", STACKS)
def test_context_from_stack_config_agrees_with_the_program(stack: str) -> None:
    settings = load_stack_settings(ROOT, stack)
    context = rp.context_from_config(pulumi_config(stack))
    assert context == rp.Context(
        build_namespace=settings.namespaces.build,
        buildkit_image=BUILDKIT_ECR.ref(settings.tool_images.registry),
        cache_tag=settings.ecr.cache_tag,
    )


def test_context_fails_closed_without_settings() -> None:
    assert rp.context_from_config({}).buildkit_image is None
    assert rp.context_from_config({"release-pipeline:settings": "not json"}).buildkit_image is None


# ------------------------------------------------------- the rendered stacks


def _build_templates(resources: list[dict]) -> Iterator[dict]:
    for r in resources:
        if r["type"] == WORKFLOW_TEMPLATE and r["inputs"].get("metadata", {}).get("namespace") == BUILD_NS:
            yield r


@pytest.mark.parametrize("stack", STACKS)
def test_every_rendered_resource_passes_every_policy(render_stack: Any, stack: str) -> None:
    resources, _ = render_stack(stack)
    context = rp.context_from_config(pulumi_config(stack))
    found = {
        f"{r['type']} {r['name']}": v
        for r in resources
        if (v := rp.violations(r["type"], r["inputs"], r["options"], context))
    }
    assert found == {}
    # Not vacuous: the data-holding kinds are there with their options.
    retained = [r for r in resources if rp._is_retained_kind(r["type"], r["inputs"])]
    assert {r["type"] for r in retained} >= {ECR, CONFIG_FILE}
    assert all(r["options"]["retain_on_delete"] for r in retained)


@pytest.mark.parametrize("stack", STACKS)
def test_rendered_build_templates_use_exactly_the_exception(render_stack: Any, stack: str) -> None:
    resources, _ = render_stack(stack)
    builds = list(_build_templates(resources))
    if not builds:
        pytest.skip("no build WorkflowTemplate rendered yet (per-service WorkflowTemplates not in the program)")
    context = rp.context_from_config(pulumi_config(stack))
    for r in builds:
        # The relaxations are really there, and only the exception lets them through:
        assert rp.check_restricted_pods(r["type"], r["inputs"], {}, rp.Context(buildkit_image=None)), r["name"]
        moved = _with(r["inputs"], "metadata.namespace", "argo")
        assert rp.check_restricted_pods(r["type"], moved, {}, context), r["name"]


# --------------------------------------------------------- the Pulumi wiring

def _pulumi_policy() -> Any:
    return pytest.importorskip(
        "pulumi_policy", reason="pulumi-policy is not installed: `make setup` (requirements-dev.txt pins it)"
    )


def test_policies_are_registered_mandatory() -> None:
    pp = _pulumi_policy()
    import policy_pack

    policies = policy_pack.policies(CTX)
    assert [p.name for p in policies] == [c.name for c in rp.CHECKS]
    assert all(isinstance(p, pp.ResourceValidationPolicy) for p in policies)
    assert {p.enforcement_level for p in policies} == {pp.EnforcementLevel.MANDATORY}


def test_validation_reads_proxied_inputs_and_options() -> None:
    pp = _pulumi_policy()
    import policy_pack
    from pulumi_policy.proxy import UNKNOWN_STRING_VALUE, unknown_checking_proxy

    by_name = {p.name: p for p in policy_pack.policies(CTX)}
    inputs = ecr_repository(name=UNKNOWN_STRING_VALUE, forceDelete=True)

    def validate(policy: str, props: dict, protect: bool = False) -> list[str]:
        reported: list[str] = []
        opts = pp.PolicyResourceOptions(protect, [], None, [], pp.PolicyCustomTimeouts(0, 0, 0), [], None)
        args = pp.ResourceValidationArgs(ECR, unknown_checking_proxy(props), "urn:x", "repo", opts, None)
        by_name[policy].validate(args, lambda message, urn=None: reported.append(message))
        return reported

    assert policy_pack.plain(unknown_checking_proxy(inputs))["name"] is rp.UNKNOWN
    assert validate("ecr-immutable-scanned-encrypted", inputs) == []
    assert any("options.protect" in m for m in validate("retained-on-delete", inputs, protect=True))
    assert any("forceDelete" in m for m in validate("retained-on-delete", inputs))


def test_stack_context_reads_the_engines_config() -> None:
    _pulumi_policy()
    import policy_pack

    env = {"PULUMI_CONFIG": json.dumps(pulumi_config("live")), "PULUMI_PROJECT": PROJECT}
    assert policy_pack.stack_context(env) == rp.context_from_config(pulumi_config("live"))
    assert policy_pack.stack_context({}).buildkit_image is None


@pytest.fixture(scope="module")
def analyzer() -> Iterator[Any]:
    """The pack as the engine runs it (`python policy/`), for stack dev, and a gRPC stub to it."""
    _pulumi_policy()
    import grpc
    from pulumi.runtime.proto import analyzer_pb2_grpc

    env = dict(os.environ, PULUMI_CONFIG=json.dumps(pulumi_config("dev")), PULUMI_PROJECT=PROJECT,
               PULUMI_STACK="dev", PULUMI_DRY_RUN="true")
    proc = subprocess.Popen([sys.executable, str(POLICY)], cwd=POLICY, env=env, stdout=subprocess.PIPE, text=True)
    try:
        assert proc.stdout is not None
        port = int(proc.stdout.readline())
        channel = grpc.insecure_channel(f"127.0.0.1:{port}")
        yield analyzer_pb2_grpc.AnalyzerStub(channel)
        channel.close()
    finally:
        proc.kill()
        proc.wait(timeout=30)


def _analyze(stub: Any, resource_type: str, inputs: dict, protect: bool = False) -> list[Any]:
    from google.protobuf import struct_pb2
    from pulumi.runtime.proto import analyzer_pb2

    props = struct_pb2.Struct()
    props.update(inputs)
    request = analyzer_pb2.AnalyzeRequest(
        type=resource_type, properties=props, urn=f"urn:pulumi:dev::release-pipeline::{resource_type}::x",
        name="x", options=analyzer_pb2.AnalyzerResourceOptions(protect=protect),
    )
    return list(stub.Analyze(request).diagnostics)


def test_analyzer_process_passes_the_rendered_stack(analyzer: Any, render_stack: Any) -> None:
    from google.protobuf import empty_pb2
    from pulumi.runtime.proto import analyzer_pb2

    info = analyzer.GetAnalyzerInfo(empty_pb2.Empty())
    assert [p.name for p in info.policies] == [c.name for c in rp.CHECKS]
    assert {p.enforcementLevel for p in info.policies} == {analyzer_pb2.MANDATORY}
    resources, _ = render_stack("dev")
    found = [
        (r["name"], d.policyName, d.message)
        for r in resources
        for d in _analyze(analyzer, r["type"], r["inputs"], r["options"]["protect"])
    ]
    assert found == []


def test_analyzer_process_blocks_a_violation(analyzer: Any) -> None:
    from pulumi.runtime.proto import analyzer_pb2
    from pulumi_policy.proxy import UNKNOWN_STRING_VALUE

    # Numbers arrive as floats over gRPC: uid 0 is still caught.
    bad = _with(build_template(), "spec.securityContext.runAsUser", 0)
    diagnostics = _analyze(analyzer, WORKFLOW_TEMPLATE, bad)
    assert [(d.policyName, d.enforcementLevel) for d in diagnostics] == [("restricted-pods", analyzer_pb2.MANDATORY)]
    assert "spec.securityContext.runAsUser" in diagnostics[0].message
    # A value unknown during preview is no violation, and no advisory "cannot run" either.
    preview = _with(build_template(namespace="argo"), "metadata.namespace", UNKNOWN_STRING_VALUE)
    assert _analyze(analyzer, WORKFLOW_TEMPLATE, preview) == []
    # The engine's options: protect is seen.
    protected = _analyze(analyzer, ECR, ecr_repository(), protect=True)
    assert [d.policyName for d in protected] == ["retained-on-delete"]
