"""How a build pod (or the image updater) gets AWS credentials: EKS Pod Identity or IRSA.

Owns: the trust policies of both modes, each pinned to one cluster, namespace and
ServiceAccount (`trust_policy` picks the stack's mode), the OIDC issuer of an IRSA
provider ARN, and `bind_identity`, which binds a role to one ServiceAccount (IRSA's
annotation, or Pod Identity's association waiting for the role's policy).

Does not own: what the role may do (`registry.policies`), the ServiceAccount
(`registry.component`, `components.image_updater`).
"""

from __future__ import annotations

from typing import Any

import pulumi
import pulumi_aws as aws

from components.config import Irsa, PodIdentity

POD_IDENTITY_PRINCIPAL = "pods.eks.amazonaws.com"
IRSA_AUDIENCE = "sts.amazonaws.com"
IRSA_ROLE_ANNOTATION = "eks.amazonaws.com/role-arn"


def oidc_issuer(oidc_provider_arn: str) -> str:
    """`arn:aws:iam::<acct>:oidc-provider/<issuer>` -> `<issuer>` (the condition key prefix)."""
    _, sep, issuer = oidc_provider_arn.partition(":oidc-provider/")
    if not sep or not issuer:
        raise ValueError(f"not an IAM OIDC provider ARN: {oidc_provider_arn!r}")
    return issuer


def pod_identity_trust_policy(cluster_name: str, namespace: str, service_account: str) -> dict[str, Any]:
    """Trust policy for EKS Pod Identity, pinned to one cluster, namespace and ServiceAccount.

    The association alone already names the ServiceAccount; the session-tag conditions
    keep any *other* association in the account (another cluster, another namespace)
    from using this role. Pod Identity adds these tags unless session tags are disabled
    on the association, which this component never does.
    Ref: https://docs.aws.amazon.com/eks/latest/userguide/pod-id-role.html
    Ref: https://docs.aws.amazon.com/eks/latest/userguide/pod-id-abac.html
    """
    return {
        "Version": "2012-10-17",
        "Statement": [
            {
                "Sid": "EksPodIdentityBuilder",
                "Effect": "Allow",
                "Principal": {"Service": POD_IDENTITY_PRINCIPAL},
                "Action": ["sts:AssumeRole", "sts:TagSession"],
                "Condition": {
                    "StringEquals": {
                        "aws:RequestTag/eks-cluster-name": cluster_name,
                        "aws:RequestTag/kubernetes-namespace": namespace,
                        "aws:RequestTag/kubernetes-service-account": service_account,
                    }
                },
            }
        ],
    }


def irsa_trust_policy(oidc_provider_arn: str, namespace: str, service_account: str) -> dict[str, Any]:
    """Trust policy for IRSA: only this ServiceAccount's projected token, for STS.

    Ref: https://docs.aws.amazon.com/eks/latest/userguide/associate-service-account-role.html
    """
    issuer = oidc_issuer(oidc_provider_arn)
    return {
        "Version": "2012-10-17",
        "Statement": [
            {
                "Sid": "IrsaBuilder",
                "Effect": "Allow",
                "Principal": {"Federated": oidc_provider_arn},
                "Action": ["sts:AssumeRoleWithWebIdentity"],
                "Condition": {
                    "StringEquals": {
                        f"{issuer}:sub": f"system:serviceaccount:{namespace}:{service_account}",
                        f"{issuer}:aud": IRSA_AUDIENCE,
                    }
                },
            }
        ],
    }


def trust_policy(
    identity: PodIdentity | Irsa, cluster_name: str, namespace: str, service_account: str
) -> dict[str, Any]:
    """The push role's trust policy for the stack's identity mode."""
    if isinstance(identity, Irsa):
        return irsa_trust_policy(identity.oidc_provider_arn, namespace, service_account)
    return pod_identity_trust_policy(cluster_name, namespace, service_account)


def bind_identity(
    parent: pulumi.Resource,
    name: str,
    identity: PodIdentity | Irsa,
    *,
    cluster_name: str,
    namespace: pulumi.Input[str],
    service_account: str,
    role: aws.iam.Role,
    role_policy: aws.iam.RolePolicy,
    tags: dict[str, str],
) -> tuple[dict[str, pulumi.Input[str]], list[pulumi.Resource]]:
    """Bind `role` to one ServiceAccount, as the stack's identity mode says.

    Returns the ServiceAccount annotations (IRSA names the role there) and the
    resources the account's users should wait for (Pod Identity's association).
    Both wait for `role_policy`: credentials handed out before the policy exists
    would fail the first call.
    """
    if isinstance(identity, Irsa):
        return {IRSA_ROLE_ANNOTATION: role.arn}, []
    association = aws.eks.PodIdentityAssociation(
        f"{name}-pod-identity",
        cluster_name=cluster_name,
        namespace=namespace,
        service_account=service_account,
        role_arn=role.arn,
        # The trust policy's conditions read these session tags.
        disable_session_tags=False,
        tags=tags,
        opts=pulumi.ResourceOptions(parent=parent, depends_on=[role_policy]),
    )
    return {}, [association]
