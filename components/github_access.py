"""GitHub access of one stack: webhooks and read keys on source repos, branch-scoped writes to helm repos.

Owns, per source repository (`SourceRepository`): the repository webhook that sends
`pull_request` and `push` deliveries to this environment's EventSource, its HMAC
secret (generated, and copied into the events namespace for the EventSource to verify
signatures with), and a read-only deploy key whose private half the checkout steps
use: one Secret in the workflows namespace (change check, unit tests) and, when a
build namespace is given, a second Secret there from the same key (the image build's
checkout; a pod can only mount Secrets of its own namespace).

Owns, per helm (GitOps) repository (`HelmRepository`): the repository ruleset that
lets this environment's GitHub App, and nothing else, push to this environment's
branch; the credentials Secret the promote step mints installation tokens from; and
a read-only deploy key registered with Argo CD as a repository Secret.

Does not own: the webhook URL and endpoint (derived in `components.intake`, shared
with the EventSource), the EventSource, Sensors and workflow steps that use these
Secrets, minting installation tokens (the promote step does it per run, so no
long-lived write token exists in the cluster), or the GitHub Apps themselves (made
by hand once per environment; README, "Prerequisites for real use").

Decisions: docs/decisions/0413-github-app-per-environment-and-branch-ruleset.md,
docs/decisions/0240-apps-get-write-after-the-rulesets.md.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import TypedDict

import pulumi
import pulumi_github as github
import pulumi_kubernetes as k8s
import pulumi_random as random
import pulumi_tls as tls

from components import intake, names
from components.config import HelmWriterSettings

SOURCE_TYPE = "release-pipeline:components:SourceRepository"
HELM_TYPE = "release-pipeline:components:HelmRepository"
PIPELINE = "release-pipeline"

# `pull_request` drives releases (the Sensor fires on a merged PR); `push` is there
# for services with `triggerOnPush`. Nothing else is sent, so the EventSource never
# has to parse (or be attacked through) event types it does not use.
# Ref: https://docs.github.com/en/webhooks/webhook-events-and-payloads
WEBHOOK_EVENTS: tuple[str, ...] = ("pull_request", "push")
# 40 alphanumerics: ~238 bits; no special characters, so the value needs no quoting
# in an HTTP header, YAML or a shell variable.
WEBHOOK_SECRET_LENGTH = 40
# ED25519: short, fast, and accepted by GitHub deploy keys, OpenSSH and Argo CD.
KEY_ALGORITHM = "ED25519"
GITHUB_SSH_HOST = "github.com"

# Secret keys the consumers read.
# Ref: https://kubernetes.io/docs/concepts/configuration/secret/#ssh-authentication-secrets
SSH_AUTH_TYPE = "kubernetes.io/ssh-auth"
SSH_PRIVATE_KEY = "ssh-privatekey"
# Ref: https://argo-cd.readthedocs.io/en/stable/operator-manual/declarative-setup/#repositories
ARGOCD_SECRET_TYPE_LABEL = "argocd.argoproj.io/secret-type"
WRITER_APP_ID = "app-id"
WRITER_INSTALLATION_ID = "installation-id"
WRITER_PRIVATE_KEY = "private-key"


# ------------------------------------------------------------------ pure builders


def split_repo(repo: str) -> tuple[str, str]:
    """`owner/name` -> (owner, name). The GitHub provider is per owner; resources take the name."""
    owner, name = repo.split("/", 1)
    return owner, name


def git_ssh_url(repo: str) -> str:
    """SSH clone URL of a repository. Credentials never go in it: the key is separate."""
    owner, name = split_repo(repo)
    return f"git@{GITHUB_SSH_HOST}:{owner}/{name}.git"








def argocd_repository_data(repo: str) -> dict[str, str]:
    """The non-secret keys of the Argo CD repository Secret (the component adds the key)."""
    return {"type": "git", "url": git_ssh_url(repo)}


def writer_data(writer: HelmWriterSettings) -> dict[str, str]:
    """The non-secret keys of the App credentials Secret (the component adds the private key)."""
    return {
        WRITER_APP_ID: str(writer.app_id),
        WRITER_INSTALLATION_ID: str(writer.installation_id),
    }


def deploy_key_title(environment: str, purpose: str) -> str:
    """Deploy key title: the four stacks add keys to the same repositories, so name the stack."""
    return f"{PIPELINE} {environment} {purpose} (read-only)"


def ruleset_name(environment: str) -> str:
    """Name of the ruleset a stack manages on each helm repository (one per environment)."""
    return f"{PIPELINE}-{environment}-gitops-branch"


def branch_ref(branch: str) -> str:
    return f"refs/heads/{branch}"


def secret_labels(role: str) -> dict[str, str]:
    return {"app.kubernetes.io/managed-by": PIPELINE, "release-pipeline/role": role}


def _secret(
    parent: pulumi.Resource,
    logical: str,
    *,
    name: str,
    namespace: pulumi.Input[str],
    role: str,
    data: Mapping[str, pulumi.Input[str]],
    type_: str = "Opaque",
    extra_labels: Mapping[str, str] | None = None,
) -> k8s.core.v1.Secret:
    """A Kubernetes Secret of this module: values straight from their (secret) Outputs."""
    return k8s.core.v1.Secret(
        logical,
        metadata=k8s.meta.v1.ObjectMetaArgs(
            name=name, namespace=namespace, labels=secret_labels(role) | dict(extra_labels or {})
        ),
        type=type_,
        string_data=dict(data),
        opts=pulumi.ResourceOptions(parent=parent),
    )


class BypassActor(TypedDict):
    actor_type: str
    actor_id: int
    bypass_mode: str


class RefName(TypedDict):
    includes: list[str]
    excludes: list[str]


class Conditions(TypedDict):
    ref_name: RefName


class PullRequestRule(TypedDict):
    required_approving_review_count: int
    dismiss_stale_reviews_on_push: bool
    require_last_push_approval: bool


class Rules(TypedDict):
    pull_request: PullRequestRule
    non_fast_forward: bool
    deletion: bool
    creation: bool


class RulesetSpec(TypedDict):
    """The arguments of `github.RepositoryRuleset` (snake_case), minus the repository."""

    name: str
    target: str
    enforcement: str
    conditions: Conditions
    bypass_actors: list[BypassActor]
    rules: Rules


def branch_ruleset(environment: str, branch: str, app_id: int) -> RulesetSpec:
    """The ruleset that lets one environment's App, and only it, push to its own branch.

    See decision 0413 for why. Everyone but the App goes through a reviewed
    pull request; nobody but the App may force-push, delete or create the branch.
    Ref: https://docs.github.com/en/rest/repos/rules#create-a-repository-ruleset
    """
    return {
        "name": ruleset_name(environment),
        "target": "branch",
        "enforcement": "active",
        # Exactly one ref, spelled out: a pattern or `~DEFAULT_BRANCH` could come to
        # match another environment's branch.
        "conditions": {"ref_name": {"includes": [branch_ref(branch)], "excludes": []}},
        # `Integration` + App id: this App's installation tokens, no other App, no user.
        # `always`: it pushes directly (the promote step has no reviewer to wait for).
        "bypass_actors": [
            {"actor_type": "Integration", "actor_id": app_id, "bypass_mode": "always"}
        ],
        "rules": {
            "pull_request": {
                "required_approving_review_count": 1,
                "dismiss_stale_reviews_on_push": True,
                # An approval must come from someone other than the last pusher, so
                # one identity cannot both push and approve.
                "require_last_push_approval": True,
            },
            "non_fast_forward": True,
            "deletion": True,
            # A deleted-then-recreated branch would be someone else's content under
            # this environment's name; only the App may create it.
            "creation": True,
        },
    }


def ruleset_args(spec: RulesetSpec, repository: str) -> github.RepositoryRulesetArgs:
    """Plain spec -> the provider's input classes (kept apart so the spec stays a plain dict)."""
    rules = spec["rules"]
    pull_request = rules["pull_request"]
    return github.RepositoryRulesetArgs(
        repository=repository,
        name=spec["name"],
        target=spec["target"],
        enforcement=spec["enforcement"],
        conditions=github.RepositoryRulesetConditionsArgs(
            ref_name=github.RepositoryRulesetConditionsRefNameArgs(
                includes=spec["conditions"]["ref_name"]["includes"],
                excludes=spec["conditions"]["ref_name"]["excludes"],
            )
        ),
        bypass_actors=[
            github.RepositoryRulesetBypassActorArgs(
                actor_type=a["actor_type"], actor_id=a["actor_id"], bypass_mode=a["bypass_mode"]
            )
            for a in spec["bypass_actors"]
        ],
        rules=github.RepositoryRulesetRulesArgs(
            pull_request=github.RepositoryRulesetRulesPullRequestArgs(
                required_approving_review_count=pull_request["required_approving_review_count"],
                dismiss_stale_reviews_on_push=pull_request["dismiss_stale_reviews_on_push"],
                require_last_push_approval=pull_request["require_last_push_approval"],
            ),
            non_fast_forward=rules["non_fast_forward"],
            deletion=rules["deletion"],
            creation=rules["creation"],
        ),
    )


# --------------------------------------------------------------- source repository


@dataclass(frozen=True)
class SourceRepositoryArgs:
    """One source repository of this stack (shared by the services that live in it)."""

    repo: str
    """`owner/name` on GitHub."""
    environment: str
    """This stack's environment: names the deploy key so the four stacks' keys are told apart."""
    events_host: str
    """Public host of this environment's EventSource Ingress (the webhook URL's host)."""
    events_namespace: pulumi.Input[str]
    """Namespace of the EventSource; gets the webhook's HMAC secret."""
    workflows_namespace: pulumi.Input[str]
    """Namespace of the release workflows; gets the read-only checkout key."""
    build_namespace: pulumi.Input[str] | None = None
    """Namespace of the image builds; gets a second Secret with the same checkout key."""


class SourceRepository(pulumi.ComponentResource):
    """Webhook (with HMAC secret) and read-only deploy key on one source repository."""

    webhook_url: pulumi.Output[str]
    webhook_secret_name: pulumi.Output[str]
    deploy_key_secret_name: pulumi.Output[str]
    build_deploy_key_secret_name: pulumi.Output[str] | None

    def __init__(
        self, name: str, args: SourceRepositoryArgs, opts: pulumi.ResourceOptions | None = None
    ) -> None:
        super().__init__(SOURCE_TYPE, name, None, opts)
        _, repo_name = split_repo(args.repo)
        url = intake.webhook_url(args.events_host, args.repo)
        if not url.startswith("https://"):
            raise ValueError(f"webhook URL must be https: {url}")

        password = random.RandomPassword(
            f"{name}-webhook-secret",
            length=WEBHOOK_SECRET_LENGTH,
            special=False,
            opts=pulumi.ResourceOptions(parent=self),
        )
        # Secret already by the provider's schema; wrapped again so it stays secret
        # whatever engine (or mock) runs the program.
        hmac_secret: pulumi.Output[str] = pulumi.Output.secret(password.result)

        webhook_secret = _secret(
            self, f"{name}-webhook-k8s-secret",
            name=intake.webhook_secret_name(args.repo), namespace=args.events_namespace,
            role="webhook-secret", data={intake.WEBHOOK_SECRET_KEY: hmac_secret},
        )

        # Ref: https://docs.github.com/en/rest/repos/webhooks#create-a-repository-webhook
        # Ref: https://docs.github.com/en/webhooks/using-webhooks/validating-webhook-deliveries
        github.RepositoryWebhook(
            f"{name}-webhook",
            repository=repo_name,
            events=list(WEBHOOK_EVENTS),
            active=True,
            configuration=github.RepositoryWebhookConfigurationArgs(
                url=url,
                content_type="json",
                # GitHub verifies the Ingress certificate; the HMAC proves the sender.
                insecure_ssl=False,
                secret=hmac_secret,
            ),
            # The secret is in the cluster before GitHub signs its first delivery with it.
            opts=pulumi.ResourceOptions(parent=self, depends_on=[webhook_secret]),
        )

        key = tls.PrivateKey(
            f"{name}-checkout-key",
            algorithm=KEY_ALGORITHM,
            opts=pulumi.ResourceOptions(parent=self),
        )
        github.RepositoryDeployKey(
            f"{name}-checkout-deploy-key",
            repository=repo_name,
            title=deploy_key_title(args.environment, "checkout"),
            key=key.public_key_openssh.apply(str.strip),
            read_only=True,
            opts=pulumi.ResourceOptions(parent=self),
        )
        # OpenSSH format: git's ssh reads it; the PEM form of an ED25519 key it does not.
        private_key: pulumi.Output[str] = pulumi.Output.secret(key.private_key_openssh)
        def checkout_secret_in(logical: str, namespace: pulumi.Input[str]) -> k8s.core.v1.Secret:
            return _secret(
                self, logical, name=names.deploy_key_secret_name(args.repo), namespace=namespace,
                role="checkout-key", data={SSH_PRIVATE_KEY: private_key}, type_=SSH_AUTH_TYPE,
            )

        checkout_secret = checkout_secret_in(f"{name}-checkout-secret", args.workflows_namespace)
        build_checkout_secret = None
        if args.build_namespace is not None:
            # Same name and key in the build namespace: the build WorkflowTemplate's
            # checkout mounts it exactly as the release template's steps mount theirs.
            build_checkout_secret = checkout_secret_in(f"{name}-build-checkout-secret", args.build_namespace)

        self.webhook_url = pulumi.Output.from_input(url)
        self.webhook_secret_name = webhook_secret.metadata.name
        self.deploy_key_secret_name = checkout_secret.metadata.name
        self.build_deploy_key_secret_name = (
            build_checkout_secret.metadata.name if build_checkout_secret is not None else None
        )
        self.register_outputs(
            {
                "webhook_url": self.webhook_url,
                "webhook_secret_name": self.webhook_secret_name,
                "deploy_key_secret_name": self.deploy_key_secret_name,
                "build_deploy_key_secret_name": self.build_deploy_key_secret_name,
            }
        )


# ----------------------------------------------------------------- helm repository


@dataclass(frozen=True)
class HelmRepositoryArgs:
    """One helm (GitOps) repository, as this stack reads and writes it."""

    repo: str
    """`owner/name` on GitHub."""
    environment: str
    """This stack's environment: names the ruleset and the deploy key."""
    branch: str
    """This environment's branch of the repository: the only one its App may push to."""
    writer: HelmWriterSettings
    """This environment's GitHub App (app id, installation id), from stack settings."""
    writer_private_key: pulumi.Input[str]
    """The App's private key (PEM), a config secret; goes only into the writer Secret."""
    argocd_namespace: pulumi.Input[str]
    """Namespace of Argo CD; gets the read-only repository Secret."""
    workflows_namespace: pulumi.Input[str]
    """Namespace of the release workflows; gets the App credentials for the promote step."""


class HelmRepository(pulumi.ComponentResource):
    """Branch ruleset, Argo CD read access and the promote step's App credentials for one helm repo."""

    ruleset_name: pulumi.Output[str]
    ruleset_branch: str
    argocd_secret_name: pulumi.Output[str]
    writer_secret_name: pulumi.Output[str]

    def __init__(
        self, name: str, args: HelmRepositoryArgs, opts: pulumi.ResourceOptions | None = None
    ) -> None:
        super().__init__(HELM_TYPE, name, None, opts)
        _, repo_name = split_repo(args.repo)

        spec = branch_ruleset(args.environment, args.branch, args.writer.app_id)
        ruleset = github.RepositoryRuleset(
            f"{name}-ruleset",
            ruleset_args(spec, repo_name),
            opts=pulumi.ResourceOptions(parent=self),
        )

        key = tls.PrivateKey(
            f"{name}-argocd-key",
            algorithm=KEY_ALGORITHM,
            opts=pulumi.ResourceOptions(parent=self),
        )
        github.RepositoryDeployKey(
            f"{name}-argocd-deploy-key",
            repository=repo_name,
            title=deploy_key_title(args.environment, "argocd"),
            key=key.public_key_openssh.apply(str.strip),
            read_only=True,
            opts=pulumi.ResourceOptions(parent=self),
        )
        argocd_key: pulumi.Output[str] = pulumi.Output.secret(key.private_key_openssh)
        # Argo CD finds repository credentials by this label; github.com's host key
        # is in the chart's default argocd-ssh-known-hosts-cm.
        argocd_secret = _secret(
            self, f"{name}-argocd-secret",
            name=names.argocd_secret_name(args.repo), namespace=args.argocd_namespace,
            role="argocd-repository", extra_labels={ARGOCD_SECRET_TYPE_LABEL: "repository"},
            data=argocd_repository_data(args.repo)
            | {"sshPrivateKey": argocd_key},
        )

        # The App's key, not a token: the promote step mints a one-hour installation
        # token per run, so nothing long-lived with write access sits in a workflow.
        # Ref: https://docs.github.com/en/apps/creating-github-apps/authenticating-with-a-github-app/generating-an-installation-access-token-for-a-github-app
        writer_secret = _secret(
            self, f"{name}-writer-secret",
            name=names.writer_secret_name(args.repo), namespace=args.workflows_namespace,
            role="helm-writer",
            data=writer_data(args.writer) | {WRITER_PRIVATE_KEY: pulumi.Output.secret(args.writer_private_key)},
        )

        self.ruleset_name = ruleset.name
        self.ruleset_branch = args.branch
        self.argocd_secret_name = argocd_secret.metadata.name
        self.writer_secret_name = writer_secret.metadata.name
        self.register_outputs(
            {
                "ruleset": {"name": self.ruleset_name, "branch": self.ruleset_branch},
                "argocd_secret_name": self.argocd_secret_name,
                "writer_secret_name": self.writer_secret_name,
            }
        )
