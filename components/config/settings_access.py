"""Stack settings about who and what reaches the platform: the GitHub organization,
this environment's helm-writer GitHub App, the public host names, how they are exposed
(Ingress: class, certificate, ALB group, annotations), sign-in (SSO) and who may do
what (RBAC, by GitHub team).

Owns: those models and what each refuses on its own (host names differ within a
stack). Does not own: host names differing across stacks (`components.config.rules`),
nor the objects built from them (`components.access`, `components.github_access`,
`components.helm_values`).
"""

from __future__ import annotations

import re
from typing import Annotated, Literal, Self

from pydantic import AfterValidator, Field, field_validator, model_validator

from components import names
from components.config.fields import DnsLabel, Model, _not_empty, _refuse_equal_fields

GithubTeam = Annotated[str, Field(pattern=r"^[a-z0-9][a-z0-9_-]{0,99}$")]


class GithubSettings(Model):
    organization: Annotated[str, Field(pattern=r"^[A-Za-z0-9](?:[A-Za-z0-9-]{0,38})$")] = Field(
        description="GitHub organization whose teams sign in and own projects.",
        examples=["acme"],
    )


class HelmWriterSettings(Model):
    """This environment's GitHub App: the only identity allowed onto its helm branch."""

    app_id: int = Field(
        gt=0,
        description="ID of this environment's GitHub App, the only identity that may push to its helm branch.",
        examples=[123456],
    )
    installation_id: int = Field(
        gt=0,
        description="Installation ID of that GitHub App in the organization.",
        examples=[45678901],
    )


class Hostnames(Model):
    """Public host names (TLS) of the event intake and the UIs behind SSO.

    The Rollouts dashboard has none: it has no login of its own, so it stays
    cluster-internal (README, "Developer UIs and how to sign in"). Each host differs
    from the others (they share one ALB group), and no two stacks use the same host
    (a cross-stack rule).
    """

    events: str = Field(
        description="Public host name of the GitHub webhook intake.",
        examples=["events.dev.example.com"],
    )
    argocd: str = Field(
        description="Public host name of the Argo CD UI (behind SSO).",
        examples=["argocd.dev.example.com"],
    )
    workflows: str = Field(
        description="Public host name of the Argo Workflows UI (behind SSO).",
        examples=["workflows.dev.example.com"],
    )

    @field_validator("*")
    @classmethod
    def _hostname(cls, value: str) -> str:
        if not names.is_dns1123_subdomain(value) or "." not in value:
            raise ValueError("must be a fully qualified lowercase host name")
        return value

    @model_validator(mode="after")
    def _each_its_own(self) -> Self:
        _refuse_equal_fields(self, "each host name must differ from the others")
        return self


def _annotation_key(value: str) -> str:
    prefix, slash, name = value.rpartition("/")
    if (
        (slash and not names.is_dns1123_subdomain(prefix))
        or len(name) > 63
        or not re.fullmatch(r"[A-Za-z0-9]([-A-Za-z0-9_.]*[A-Za-z0-9])?", name)
    ):
        raise ValueError(
            "must be a Kubernetes annotation key: an optional DNS subdomain prefix and '/', then a "
            "name of at most 63 letters, digits, '-', '_' or '.', starting and ending with a letter or digit"
        )
    return value


AnnotationKey = Annotated[str, AfterValidator(_annotation_key)]

AcmArn = Annotated[str, Field(pattern=r"^arn:aws[a-z-]*:acm:[a-z0-9-]+:[0-9]{12}:certificate/.+$")]


class IngressSettings(Model):
    """How hosts are exposed: the AWS Load Balancer Controller by default."""

    class_name: Annotated[str, Field(pattern=r"^[a-z0-9][a-z0-9.-]*$")] = Field(
        default="alb",
        description="IngressClass of every Ingress.",
    )
    # default: the controller discovers the ACM certificate by host name
    certificate_arn: AcmArn | None = Field(
        default=None,
        description="ACM certificate of the hosts; left out, the controller discovers it by host name.",
        examples=["arn:aws:acm:eu-west-1:123456789012:certificate/0a1b2c3d"],
    )
    # An ALB security policy name (not empty: the controller refuses an empty one).
    ssl_policy: Annotated[str, AfterValidator(_not_empty)] = Field(
        default="ELBSecurityPolicy-TLS13-1-2-2021-06",
        description="ALB security policy of the HTTPS listeners.",
    )
    group_name: Annotated[str, Field(pattern=r"^[a-z0-9][a-z0-9-]{0,40}$")] = Field(
        default="release-pipeline",
        description="ALB group every Ingress of the stack joins (one load balancer).",
    )
    ui_scheme: Literal["internal", "internet-facing"] = Field(
        default="internal",
        description="Whether the UIs' load balancer is internal or internet-facing.",
    )
    # Added to every Ingress, e.g. external-dns; keys are Kubernetes annotation keys.
    annotations: dict[AnnotationKey, str] = Field(
        default={},
        description="Annotations added to every Ingress, e.g. for external-dns.",
        examples=[{"external-dns.alpha.kubernetes.io/ttl": "60"}],
    )


class SsoSettings(Model):
    """Argo CD and Argo Workflows sign-in through Dex's GitHub connector.

    The OAuth App's client secret is the config secret `ssoClientSecret`.
    """

    client_id: Annotated[str, Field(min_length=1)] = Field(
        description="Client ID of the GitHub OAuth App Dex signs in with (its secret is ssoClientSecret).",
        examples=["Iv1.0123456789abcdef"],
    )


class RbacSettings(Model):
    """Who may do what in Argo CD and Argo Workflows (GitHub teams of `github.organization`)."""

    admin_team: GithubTeam = Field(
        default="platform",
        description="GitHub team with admin rights in Argo CD and Argo Workflows.",
    )
    sync_by: Literal["team", "release-managers"] = Field(
        default="team",
        description="Who may sync an Application: its owning team, or only the release managers team.",
    )
    release_managers_team: GithubTeam = Field(
        default="release-managers",
        description="GitHub team that may sync every Application when syncBy is release-managers.",
    )
    # project (team in services.yaml) -> GitHub team slugs; default: the project name
    team_slugs: dict[DnsLabel, Annotated[list[GithubTeam], Field(min_length=1)]] = Field(
        default={},
        description="GitHub team slugs per project (services.yaml project); left out, the project name.",
        examples=[{"storefront": ["storefront-devs", "storefront-leads"]}],
    )
