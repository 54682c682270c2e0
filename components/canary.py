"""Which replica counts honour a replica-weighted canary (pure arithmetic, no Pulumi).

Owns: the rule `python -m components check` applies to a service's Rollout without
traffic routing (docs/decisions/0142-canary-steps-and-replicas.md), and the fewest
replicas that honour a list of `setWeight` values (the default replica count).
Does not own: where the steps and the replica count come from (`components.config`),
the Rollout (`components.delivery`).

With Argo Rollouts' basic canary (no traffic routing) a `setWeight: w` step is carried
out by replica counts alone: the canary ReplicaSet is scaled to ceil(w * N / 100) of
the Rollout's N replicas, and traffic follows the pods. A step is *honoured* when it
changes what serves traffic and leaves the decision to promote with a person or the
next step:

- two consecutive distinct weights that give the same canary pod count are one step
  twice (the second pause gates nothing new);
- a weight below 100 whose count is all N pods promotes fully before the steps say so
  (no stable pod is left to fall back to while the canary is judged).

Weights are strictly increasing (`components.config`), so each list has one answer.
"""

from __future__ import annotations

from collections.abc import Sequence
from itertools import pairwise

# Every list of distinct integer weights 1..100 is honoured by 100 replicas (one pod
# per percent), so the search for the fewest stops there.
MAX_SEARCH = 100


def canary_pods(weight: int, replicas: int) -> int:
    """Canary pods of a `setWeight: weight` step with `replicas` pods: ceil(weight * replicas / 100)."""
    return -(-weight * replicas // 100)


def unhonoured_steps(weights: Sequence[int], replicas: int) -> list[str]:
    """What `replicas` pods cannot do of these increasing weights, one phrase per step; [] when all are honoured."""
    found = []
    for before, after in pairwise(weights):
        pods = canary_pods(before, replicas)
        if pods == canary_pods(after, replicas):
            found.append(f"setWeight {before} and {after} both run {pods} canary pod{'s' * (pods != 1)}")
    for weight in weights:
        if weight < 100 and canary_pods(weight, replicas) >= replicas:
            found.append(f"setWeight {weight} already runs all {replicas} pod{'s' * (replicas != 1)} as canary")
    return found


def fewest_replicas(weights: Sequence[int]) -> int:
    """The fewest replicas that honour every weight (1 for no weight or a single `setWeight: 100`)."""
    for replicas in range(1, MAX_SEARCH + 1):
        if not unhonoured_steps(weights, replicas):
            return replicas
    raise AssertionError(f"weights {list(weights)} are not increasing integers in 1..100")  # pragma: no cover
