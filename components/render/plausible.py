"""Plausible outputs for the offline render: what each resource and provider function returns.

Owns: ``RenderMocks``, deterministic, plausible outputs per resource type and for the
provider functions the program may call (ARNs, ECR URLs, passwords, keys, ids), with the
region and account each AWS resource lives in learned from its provider (``AwsEnv``).
Everything is derived from names with hashlib: no uuid, time or randomness, so two
renders of the same input are byte-identical.

Does not own: recording the registrations (``render.monitor``), running the program
(``render.engine``), writing files (``render.output``).
"""

from __future__ import annotations

import base64
import hashlib
import json
import string
import struct
import threading
from dataclasses import dataclass
from typing import Any

from pulumi.runtime.mocks import MockCallArgs, MockResourceArgs, Mocks

DEFAULT_REGION = "us-east-1"
DEFAULT_ACCOUNT = "123456789012"
PROVIDER_PREFIX = "pulumi:providers:"


def _digest(*parts: str) -> bytes:
    return hashlib.sha256("\x00".join(parts).encode()).digest()


def _hex(*parts: str, length: int = 16) -> str:
    return hashlib.sha256("\x00".join(parts).encode()).hexdigest()[:length]


def _number(*parts: str, digits: int = 9) -> str:
    value = int.from_bytes(_digest(*parts)[:8], "big") % (10**digits)
    return str(value + 10 ** (digits - 1))


@dataclass(frozen=True)
class AwsEnv:
    """Region and account a resource lives in, learned from its provider."""

    region: str = DEFAULT_REGION
    account: str = DEFAULT_ACCOUNT


# --- plausible outputs -------------------------------------------------------


def mock_password(name: str, inputs: dict[str, Any]) -> str:
    length = int(inputs.get("length") or 16)
    classes: list[str] = []
    if inputs.get("lower", True):
        classes.append(string.ascii_lowercase)
    if inputs.get("upper", True):
        classes.append(string.ascii_uppercase)
    if inputs.get("numeric", inputs.get("number", True)):
        classes.append(string.digits)
    if inputs.get("special", True):
        classes.append(str(inputs.get("overrideSpecial") or "!#$%&*()-_=+[]{}<>:?"))
    alphabet = "".join(classes) or string.ascii_letters
    stream = b""
    counter = 0
    while len(stream) < length:
        stream += _digest("password", name, str(counter))
        counter += 1
    chars = []
    for position, byte in enumerate(stream[:length]):
        # One character from each enabled class first, so every class appears
        # (as the real provider's min_* options would ensure for a useful length).
        pool = classes[position] if position < len(classes) else alphabet
        chars.append(pool[byte % len(pool)])
    return "".join(chars)


def _bcrypt_like(name: str) -> str:
    alphabet = "./" + string.ascii_uppercase + string.ascii_lowercase + string.digits
    raw = _digest("bcrypt", name) + _digest("bcrypt2", name)
    return "$2a$10$" + "".join(alphabet[b % 64] for b in raw[:53])


def _ssh_string(data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + data


def _pem(label: str, body: bytes) -> str:
    text = base64.b64encode(body).decode()
    lines = [text[i : i + 64] for i in range(0, len(text), 64)]
    return f"-----BEGIN {label}-----\n" + "\n".join(lines) + f"\n-----END {label}-----\n"


def mock_private_key(name: str, inputs: dict[str, Any]) -> dict[str, Any]:
    algorithm = str(inputs.get("algorithm") or "RSA").upper()
    seed = _digest("tls", name)
    if algorithm == "ED25519":
        key_type = "ssh-ed25519"
        blob = _ssh_string(key_type.encode()) + _ssh_string(seed)
    elif algorithm == "ECDSA":
        curve = {"P224": "nistp224", "P256": "nistp256", "P384": "nistp384", "P521": "nistp521"}.get(
            str(inputs.get("ecdsaCurve") or "P224"), "nistp256"
        )
        key_type = f"ecdsa-sha2-{curve}"
        blob = _ssh_string(key_type.encode()) + _ssh_string(curve.encode()) + _ssh_string(b"\x04" + seed + seed)
    else:
        key_type = "ssh-rsa"
        modulus = b"\x00" + b"".join(_digest("rsa", name, str(i)) for i in range(8))
        blob = _ssh_string(key_type.encode()) + _ssh_string(b"\x01\x00\x01") + _ssh_string(modulus)
    public_openssh = f"{key_type} {base64.b64encode(blob).decode()}\n"
    fingerprint = base64.b64encode(hashlib.sha256(blob).digest()).decode().rstrip("=")
    md5 = hashlib.md5(blob, usedforsecurity=False).hexdigest()
    private_body = seed + _digest("tls-private", name)
    return {
        "algorithm": algorithm,
        "privateKeyOpenssh": _pem("OPENSSH PRIVATE KEY", b"openssh-key-v1\x00" + private_body),
        "privateKeyPem": _pem("PRIVATE KEY" if algorithm == "ED25519" else f"{algorithm} PRIVATE KEY", private_body),
        "privateKeyPemPkcs8": _pem("PRIVATE KEY", private_body),
        "publicKeyOpenssh": public_openssh,
        "publicKeyPem": _pem("PUBLIC KEY", blob),
        "publicKeyFingerprintSha256": f"SHA256:{fingerprint}",
        "publicKeyFingerprintMd5": ":".join(md5[i : i + 2] for i in range(0, 32, 2)),
    }


def _aws_service(type_token: str) -> tuple[str, str]:
    """("iam", "role") for "aws:iam/role:Role"."""
    module = type_token.split(":")[1] if type_token.count(":") >= 2 else ""
    service, _, kind = module.partition("/")
    return service or "aws", kind or "resource"


# IAM, S3 and Route 53 ARNs carry no region (S3 not even an account).
_GLOBAL_SERVICES = {"iam", "s3", "route53", "cloudfront"}


def _aws_arn(env: AwsEnv, service: str, resource: str) -> str:
    if service == "s3":
        return f"arn:aws:s3:::{resource}"
    region = "" if service in _GLOBAL_SERVICES else env.region
    return f"arn:aws:{service}:{region}:{env.account}:{resource}"


class RenderMocks(Mocks):
    """Deterministic, plausible outputs for every resource the program registers."""

    def __init__(self, fallback_env: AwsEnv | None = None) -> None:
        self.fallback_env = fallback_env or AwsEnv()
        self._aws_envs: dict[str, AwsEnv] = {}
        self._lock = threading.Lock()
        self.transforms: list[Any] = []

    # Providers ------------------------------------------------------------

    def note_provider(self, ref: str, type_token: str, inputs: dict[str, Any]) -> None:
        """Remember an aws provider's region and account for the resources using it."""
        if type_token != f"{PROVIDER_PREFIX}aws":
            return
        region = inputs.get("region") or self.fallback_env.region
        accounts: Any = inputs.get("allowedAccountIds")
        if isinstance(accounts, str):
            # Provider inputs that are not strings travel JSON-encoded.
            try:
                accounts = json.loads(accounts)
            except ValueError:
                accounts = [accounts]
        account = str(accounts[0]) if isinstance(accounts, list) and accounts else self.fallback_env.account
        with self._lock:
            self._aws_envs[ref] = AwsEnv(region=str(region), account=account)

    def aws_env(self, provider_ref: str | None) -> AwsEnv:
        with self._lock:
            if provider_ref and provider_ref in self._aws_envs:
                return self._aws_envs[provider_ref]
            if self._aws_envs:
                # Default provider or an unseen ref: the first explicit aws provider
                # (by ref, so the choice does not depend on registration timing).
                return self._aws_envs[min(self._aws_envs)]
        return self.fallback_env

    def register_transform(self, transform: Any) -> None:
        self.transforms.append(transform)

    # Resources ------------------------------------------------------------

    def new_resource(self, args: MockResourceArgs) -> tuple[str | None, dict[str, Any]]:
        typ, name = args.typ, args.name
        inputs: dict[str, Any] = dict(args.inputs or {})
        state = dict(inputs)
        if typ.startswith(PROVIDER_PREFIX):
            # Real provider ids are UUIDs; this one is as stable as the name.
            digest = _hex("provider", typ, name, length=32)
            return f"{digest[:8]}-{digest[8:12]}-{digest[12:16]}-{digest[16:20]}-{digest[20:]}", state
        package = typ.split(":", 1)[0]
        if package == "aws":
            return self._aws(typ, name, inputs, state, self.aws_env(args.provider))
        if package == "kubernetes":
            return self._kubernetes(typ, name, inputs, state)
        if package == "random":
            return self._random(typ, name, inputs, state)
        if package == "tls":
            state.update(mock_private_key(name, inputs) if typ == "tls:index/privateKey:PrivateKey" else {})
            return f"{name}-{_hex(typ, name, length=12)}", state
        if package == "github":
            return self._github(typ, name, inputs, state)
        return f"{name}-{_hex(typ, name, length=12)}", state

    def _aws(
        self, typ: str, name: str, inputs: dict[str, Any], state: dict[str, Any], env: AwsEnv
    ) -> tuple[str, dict[str, Any]]:
        service, kind = _aws_service(typ)
        physical = str(inputs.get("name") or (str(inputs.get("namePrefix") or "") + name) or name)
        if typ == "aws:ecr/repository:Repository":
            state.update(
                name=physical,
                arn=_aws_arn(env, "ecr", f"repository/{physical}"),
                registryId=env.account,
                repositoryUrl=f"{env.account}.dkr.ecr.{env.region}.amazonaws.com/{physical}",
            )
            return physical, state
        if typ == "aws:iam/role:Role":
            state.update(
                name=physical,
                arn=_aws_arn(env, "iam", f"role{inputs.get('path') or '/'}{physical}"),
                uniqueId="AROA" + _hex("role", physical, length=17).upper(),
            )
            return physical, state
        if typ == "aws:iam/policy:Policy":
            arn = _aws_arn(env, "iam", f"policy{inputs.get('path') or '/'}{physical}")
            state.update(name=physical, arn=arn, policyId="ANPA" + _hex("policy", physical, length=17).upper())
            return arn, state
        if typ == "aws:eks/podIdentityAssociation:PodIdentityAssociation":
            association = "a-" + _hex("pia", name, length=17)
            state.update(
                associationId=association,
                associationArn=_aws_arn(
                    env, "eks", f"podidentityassociation/{inputs.get('clusterName', 'cluster')}/{association}"
                ),
            )
            return f"{inputs.get('clusterName', 'cluster')},{association}", state
        state.setdefault("arn", _aws_arn(env, service, f"{kind}/{physical}"))
        if "name" in inputs or kind in {"role", "user", "group", "bucket", "cluster"}:
            state.setdefault("name", physical)
        state.setdefault("tagsAll", inputs.get("tags") or {})
        return physical if "name" in inputs else f"{name}-{_hex(typ, name, length=12)}", state

    def _kubernetes(
        self, typ: str, name: str, inputs: dict[str, Any], state: dict[str, Any]
    ) -> tuple[str, dict[str, Any]]:
        if typ.startswith("kubernetes:helm.sh/"):
            release = str(inputs.get("name") or name)
            namespace = str(inputs.get("namespace") or "default")
            state.update(
                name=release,
                namespace=namespace,
                status={
                    "name": release,
                    "namespace": namespace,
                    "chart": inputs.get("chart"),
                    "version": inputs.get("version"),
                    "revision": 1,
                    "status": "deployed",
                },
            )
            return f"{namespace}/{release}", state
        metadata = dict(state.get("metadata") or {})
        # The real provider auto-names with a random suffix; the render keeps an
        # explicit name and otherwise uses the logical name, so references resolve.
        metadata.setdefault("name", name)
        state["metadata"] = metadata
        object_namespace = metadata.get("namespace")
        resource_id = f"{object_namespace}/{metadata['name']}" if object_namespace else f"{metadata['name']}"
        return resource_id, state

    def _random(self, typ: str, name: str, inputs: dict[str, Any], state: dict[str, Any]) -> tuple[str, dict[str, Any]]:
        if typ in ("random:index/randomPassword:RandomPassword", "random:index/randomString:RandomString"):
            value = mock_password(name, inputs)
            state["result"] = value
            if typ.endswith("RandomPassword"):
                state["bcryptHash"] = _bcrypt_like(name)
                return "none", state
            return value, state
        if typ == "random:index/randomId:RandomId":
            raw = _digest("randomid", name)[: int(inputs.get("byteLength") or 8)]
            prefix = str(inputs.get("prefix") or "")
            state.update(
                hex=prefix + raw.hex(),
                dec=prefix + str(int.from_bytes(raw, "big")),
                b64Std=prefix + base64.b64encode(raw).decode(),
                b64Url=prefix + base64.urlsafe_b64encode(raw).decode().rstrip("="),
            )
            return base64.urlsafe_b64encode(raw).decode().rstrip("="), state
        if typ == "random:index/randomUuid:RandomUuid":
            h = _hex("uuid", name, length=32)
            value = f"{h[:8]}-{h[8:12]}-4{h[13:16]}-a{h[17:20]}-{h[20:32]}"
            state["result"] = value
            return value, state
        if typ == "random:index/randomInteger:RandomInteger":
            low, high = int(inputs.get("min") or 0), int(inputs.get("max") or 100)
            value_int = low + int.from_bytes(_digest("int", name)[:8], "big") % max(1, high - low + 1)
            state["result"] = value_int
            return str(value_int), state
        return f"{name}-{_hex(typ, name, length=12)}", state

    def _github(self, typ: str, name: str, inputs: dict[str, Any], state: dict[str, Any]) -> tuple[str, dict[str, Any]]:
        repository = str(inputs.get("repository") or inputs.get("name") or name)
        etag = f'W/"{_hex("etag", typ, name, length=32)}"'
        if typ == "github:index/repositoryWebhook:RepositoryWebhook":
            hook_id = _number("hook", repository, name)
            state.update(url=f"https://api.github.com/repos/{repository}/hooks/{hook_id}", etag=etag)
            return hook_id, state
        if typ == "github:index/repositoryDeployKey:RepositoryDeployKey":
            key_id = _number("deploykey", repository, name)
            state.update(etag=etag)
            return f"{repository}:{key_id}", state
        if typ == "github:index/repositoryRuleset:RepositoryRuleset":
            ruleset_id = _number("ruleset", repository, name, digits=7)
            state.update(rulesetId=int(ruleset_id), nodeId="RRS_" + _hex("node", name, length=16), etag=etag)
            return ruleset_id, state
        if typ == "github:index/repository:Repository":
            full = f"offline-render/{repository}"
            state.update(
                fullName=full,
                htmlUrl=f"https://github.com/{full}",
                httpCloneUrl=f"https://github.com/{full}.git",
                sshCloneUrl=f"git@github.com:{full}.git",
                gitCloneUrl=f"git://github.com/{full}.git",
                nodeId="R_" + _hex("node", name, length=16),
                repoId=int(_number("repo", name)),
                etag=etag,
            )
            return repository, state
        state.setdefault("etag", etag)
        return _number(typ, name), state

    # Provider functions ----------------------------------------------------

    def call(self, args: MockCallArgs) -> tuple[dict[str, Any], list[tuple[str, str]] | None]:
        env = self.aws_env(args.provider)
        token = args.token
        inputs = dict(args.args or {})
        if token == "aws:index/getCallerIdentity:getCallerIdentity":
            return {
                "accountId": env.account,
                "arn": f"arn:aws:iam::{env.account}:user/offline-render",
                "id": env.account,
                "userId": "AIDA" + _hex("caller", env.account, length=17).upper(),
            }, None
        if token == "aws:index/getRegion:getRegion":
            return {
                "id": env.region,
                "name": env.region,
                "region": env.region,
                "endpoint": f"ec2.{env.region}.amazonaws.com",
                "description": env.region,
            }, None
        if token == "aws:index/getPartition:getPartition":
            return {
                "id": "aws",
                "partition": "aws",
                "dnsSuffix": "amazonaws.com",
                "reverseDnsPrefix": "com.amazonaws",
            }, None
        if token == "aws:eks/getCluster:getCluster":
            cluster = str(inputs.get("name") or "cluster")
            oidc = _hex("oidc", cluster, length=32).upper()
            return {
                "id": cluster,
                "name": cluster,
                "arn": _aws_arn(env, "eks", f"cluster/{cluster}"),
                "endpoint": f"https://{oidc}.gr7.{env.region}.eks.amazonaws.com",
                "certificateAuthorities": [{"data": base64.b64encode(b"offline-render-ca").decode()}],
                "identities": [{"oidcs": [{"issuer": f"https://oidc.eks.{env.region}.amazonaws.com/id/{oidc}"}]}],
                "status": "ACTIVE",
                "version": "1.31",
            }, None
        if token == "aws:iam/getPolicyDocument:getPolicyDocument":
            document = _policy_document(inputs)
            return {
                "id": _hex("policy", document, length=10),
                "json": document,
                "minifiedJson": json.dumps(json.loads(document), separators=(",", ":")),
            }, None
        return {}, None


def _policy_document(inputs: dict[str, Any]) -> str:
    """The JSON ``aws.iam.get_policy_document`` would return for its statements."""

    def one_or_list(values: list[Any]) -> Any:
        return values[0] if len(values) == 1 else sorted(values)

    statements = []
    for item in inputs.get("statements") or []:
        stmt: dict[str, Any] = {}
        if item.get("sid"):
            stmt["Sid"] = item["sid"]
        stmt["Effect"] = item.get("effect") or "Allow"
        for src, dst in (
            ("actions", "Action"),
            ("notActions", "NotAction"),
            ("resources", "Resource"),
            ("notResources", "NotResource"),
        ):
            if item.get(src):
                stmt[dst] = one_or_list(list(item[src]))
        for src, dst in (("principals", "Principal"), ("notPrincipals", "NotPrincipal")):
            if item.get(src):
                principal: dict[str, Any] = {}
                for p in item[src]:
                    principal.setdefault(p["type"], []).extend(p.get("identifiers") or [])
                stmt[dst] = {k: one_or_list(v) for k, v in principal.items()}
        if item.get("conditions"):
            condition: dict[str, Any] = {}
            for c in item["conditions"]:
                condition.setdefault(c["test"], {})[c["variable"]] = one_or_list(list(c.get("values") or []))
            stmt["Condition"] = condition
        statements.append(stmt)
    document = {"Version": inputs.get("version") or "2012-10-17", "Statement": statements}
    return json.dumps(document, indent=2)
