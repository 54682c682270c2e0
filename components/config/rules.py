"""The rules that need more than one file: across stacks (one cluster, branch, helm
branch, ECR repository prefix per account and region, and host names per stack; a
`promoteFrom` that names its upstream stack's actual registry) and between services.yaml
and a stack (no platform namespace, ECR name length, replica counts that carry out the
canary steps, no push-triggered service that releases itself again); `validate_all`,
which `check` runs.

Owns: those rules, and what one stack's `pulumi up` learns of its siblings
(`sibling_settings`, `sibling_stack_problems`). Does not own: the rules within one file
(the models), nor the replica arithmetic (`components.canary`). Decisions:
docs/decisions/0142-canary-steps-and-replicas.md.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from pathlib import Path, PurePosixPath

from components import canary, names
from components.config.fields import STACKS, _shown
from components.config.loading import load_services, load_stack_settings, stack_file
from components.config.services import Service, ServicesFile
from components.config.settings import Settings
from components.errors import ConfigError, Problem

# Settings no two stacks may share: (what the message calls it, the field, the value
# that must differ, as the message shows it; why).
_PER_STACK: tuple[tuple[str, str, Callable[[Settings], str], str], ...] = (
    ("cluster", "cluster", lambda s: _shown((s.aws.account_id, s.aws.region, s.cluster.name)),
     " (they would fight over CRDs, cluster roles and Argo CD)"),
    ("branch", "branch", lambda s: _shown(s.branch), ""),
    ("helm branch", "helmBranch", lambda s: _shown(s.helm_branch), ""),
    ("ECR repository prefix in the same account and region", "ecr.repositoryPrefix",
     lambda s: f"{_shown(s.ecr_prefix)} in account {s.aws.account_id}, region {s.aws.region}",
     " (both would create the same ECR repositories); give each stack its own ecr.repositoryPrefix "
     "(default: the environment name)"),
)


def cross_stack_problems(settings: Mapping[str, Settings], project_dir: Path) -> list[Problem]:
    """Rules that span stacks: one cluster, branch, helm branch, ECR repository prefix
    (per account and region) and host name per stack, and a `promoteFrom` that names its
    upstream stack's actual registry."""
    problems = _promote_from_problems(settings, project_dir)
    for label, field, key, why in _PER_STACK:
        owners: dict[str, list[str]] = {}
        for stack, s in sorted(settings.items()):
            owners.setdefault(key(s), []).append(stack)
        for value, stacks in sorted(owners.items(), key=lambda kv: kv[1]):
            for stack in stacks[1:]:
                problems.append(Problem(
                    str(stack_file(project_dir, stack)), None, "settings", field,
                    f"same {label} as stack {stacks[0]!r}: {value}{why}",
                    involves=(stacks[0],),
                ))
    # Host names: each is one stack's (webhooks and sign-in callbacks go to one cluster).
    hosts: dict[str, list[tuple[str, str]]] = {}
    for stack, s in sorted(settings.items()):
        for field, host in s.hostnames.model_dump(by_alias=True).items():
            hosts.setdefault(host, []).append((stack, field))
    for host, users in sorted(hosts.items()):
        first_stack, first_field = users[0]
        for stack, field in users[1:]:
            if stack != first_stack:
                problems.append(Problem(
                    str(stack_file(project_dir, stack)), None, "settings", f"hostnames.{field}",
                    f"same host name as stack {first_stack!r} (hostnames.{first_field}): {_shown(host)}; "
                    "every stack needs host names of its own",
                    involves=(first_stack,),
                ))
    return problems


# Each part of `Settings.promote_from_registry`: the promoteFrom field (YAML, Python),
# the upstream stack's own setting it must equal, how the message names it, its default.
_PROMOTE_FROM_PARTS = (
    ("accountId", "account_id", "aws.accountId", "in account", "this stack's own account"),
    ("region", "region", "aws.region", "in region", "this stack's own region"),
    ("repositoryPrefix", "repository_prefix", "ecr.repositoryPrefix", "under the prefix",
     "the upstream environment's name"),
)


def _promote_from_problems(settings: Mapping[str, Settings], project_dir: Path) -> list[Problem]:
    """A `promoteFrom` must resolve to its upstream stack's account, region and repository prefix.

    The upstream stack grants pull on its repositories only to downstream stacks whose
    `promoteFrom` resolves to exactly them (`components.registry.promotion_downstreams`);
    anything else would make the downstream's cache rule or push role read repositories
    that nobody granted, or that do not exist. Checked where both stack files are known.
    """
    problems = []
    for stack, s in sorted(settings.items()):
        upstream = s.promote_from
        resolved = s.promote_from_registry
        if upstream is None or resolved is None or upstream.environment not in settings:
            continue
        actual = settings[upstream.environment].ecr_registry
        upstream_file = stack_file(project_dir, upstream.environment).name
        for (field, attr, their_field, where, default), got, want in zip(
            _PROMOTE_FROM_PARTS, resolved, actual, strict=True
        ):
            if got == want:
                continue
            shown = f"not set, so {default} {got!r}" if getattr(upstream, attr) is None else f"is {got!r}"
            if want == "":
                # The grants, cache rule and read policies are scoped to `<prefix>/*`:
                # repositories outside any prefix cannot be named that way.
                fix = (f"promoteFrom needs the upstream's repositories under a prefix: set {their_field} "
                       f"in {upstream_file}")
                want_text = "at the top level (no prefix)"
            else:
                fix = f"set promoteFrom.{field} to {want!r}"
                want_text = f"{where} {want!r}"
            problems.append(Problem(
                str(stack_file(project_dir, stack)), None, "settings", f"promoteFrom.{field}",
                f"{shown}, but stack {upstream.environment!r} keeps its ECR repositories {want_text} "
                f"({their_field} in {upstream_file}); {fix}",
                involves=(upstream.environment,),
            ))
    return problems


def service_problems(services: ServicesFile, settings: Settings, file: str) -> list[Problem]:
    """Rules that need both files: names that must fit the stack's limits."""
    problems = []
    platform = set(settings.namespaces.model_dump().values())
    for s in services.for_environment(settings.environment):
        if s.namespace in platform:
            problems.append(Problem(file, None, f"service {s.name!r}", "namespace",
                                    f"{s.namespace!r} is a platform namespace of stack "
                                    f"{settings.environment!r}; use the team's own namespace"))
        repo = names.ecr_repository_name(settings.ecr_prefix, s.image_repository)
        if len(repo) > names.ECR_REPOSITORY_MAX:
            problems.append(Problem(file, None, f"service {s.name!r}", "imageRepository",
                                    f"ECR name {repo!r} is longer than 256 characters"))
        problems += _replica_problems(s, settings, file)
        if _releases_itself(s, settings):
            problems.append(Problem(
                file, None, f"service {s.name!r}", "triggerOnPush",
                f"every release would start the next: its promote commit to {settings.helm_branch!r} of "
                f"{s.helm.repo} is a push to the branch it releases from, touching its path "
                f"({s.path or 'the whole repository'}); keep the chart outside the service's path, "
                "or release on merged pull requests only",
            ))
    return problems


def _replica_problems(service: Service, settings: Settings, file: str) -> list[Problem]:
    """A replica count the service's replica-weighted canary steps cannot be carried out with.

    Only without traffic routing (then the weights are pod counts) and without an HPA
    (its count is not known here); the rule is `components.canary`'s.
    """
    replicas, source = service.replicas_and_source_in(settings)
    if replicas is None or service.rollout.traffic_routing:
        return []
    env = settings.environment
    steps = "the service's canary." + env if env in service.canary else "the stack's canary"
    weights = [s.set_weight for s in service.canary_in(settings) if s.set_weight is not None]
    unhonoured = canary.unhonoured_steps(weights, replicas)
    if not unhonoured:
        return []
    field = source if source.startswith("rollout.") else "rollout.replicas"
    return [Problem(
        file, None, f"service {service.name!r}", field,
        f"in {env}, {replicas} replica{'s' * (replicas != 1)} ({source}) cannot carry out {steps} "
        f"(setWeight {', '.join(str(w) for w in weights)}): {'; '.join(unhonoured)}. Without traffic "
        "routing setWeight w runs ceil(w x replicas / 100) canary pods, so each weight needs a count of "
        f"its own and every weight below 100 must leave a stable pod: give {env} a count that does "
        f"(rollout.replicasByEnvironment.{env}, or rollout.replicas for every environment), the fewest "
        f"being {canary.fewest_replicas(weights)}; or change the steps, or use rollout.trafficRouting",
    )]


def _releases_itself(service: Service, settings: Settings) -> bool:
    """Whether the promote commit of a `triggerOnPush` service would trigger it again:
    the chart lives in the source repository, on the same branch, under the service's path."""
    if not service.trigger_on_push or settings.helm_branch != settings.branch:
        return False
    if service.helm.repo.lower() != service.repo.lower():
        return False
    values = PurePosixPath(service.helm.path, service.helm.values_file or settings.values_file)
    return not service.path or values.is_relative_to(service.path)


def validate_all(stacks: Iterable[str], services_path: Path, project_dir: Path) -> list[Problem]:
    """Every problem in the services file and the given stacks' settings, at once."""
    problems: list[Problem] = []
    services = None
    try:
        services = load_services(services_path)
    except ConfigError as err:
        problems += err.problems
    loaded: dict[str, Settings] = {}
    for stack in stacks:
        if stack not in STACKS:
            problems.append(Problem(str(stack_file(project_dir, stack)), None, "stack", "",
                                    f"unknown stack; expected one of {', '.join(STACKS)}"))
            continue
        try:
            loaded[stack] = load_stack_settings(project_dir, stack)
        except ConfigError as err:
            problems += err.problems
    problems += cross_stack_problems(loaded, project_dir)
    if services is not None:
        for settings in loaded.values():
            problems += service_problems(services, settings, str(services_path))
    return sorted(set(problems), key=lambda p: (p.file, p.line or 0, p.where, p.field, p.message))


def sibling_stack_problems(
    settings: Settings, stack: str, project_dir: Path, siblings: Mapping[str, Settings] | None = None
) -> list[Problem]:
    """Cross-stack rules for one stack against the other stack files in the project.

    `pulumi up` sees only its own stack's config; reading the sibling
    `Pulumi.<env>.yaml` files lets it refuse, for example, a second stack on a cluster
    another stack already owns. A sibling file that does not parse is that stack's
    problem, reported when it is deployed, and is skipped here. `siblings`: the
    siblings' settings when the caller has them already (`sibling_settings`).
    """
    if siblings is None:
        siblings = sibling_settings(stack, project_dir)
    all_settings = {stack: settings} | dict(siblings)
    own_file = str(stack_file(project_dir, stack))
    return [p for p in cross_stack_problems(all_settings, project_dir) if p.file == own_file or stack in p.involves]


def sibling_settings(stack: str, project_dir: Path) -> dict[str, Settings]:
    """The settings of the other stack files in the project that exist and parse, by stack.

    What `pulumi up` of one stack may know of the others: used for the cross-stack
    rules above and to learn which stacks promote images from this one. A file that
    does not parse is skipped (that stack's problem, reported when it is deployed).
    """
    siblings: dict[str, Settings] = {}
    for other in STACKS:
        if other == stack or not stack_file(project_dir, other).exists():
            continue
        try:
            siblings[other] = load_stack_settings(project_dir, other)
        except ConfigError:
            continue
    return siblings
