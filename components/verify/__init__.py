"""`python -m components verify`: the render judged by the real Kubernetes API server and Argo tools.

Owns, per module:
- `apiserver`: a throw-away etcd + kube-apiserver on loopback, and stopping them always;
- `client`: the few HTTP calls made to it (discovery, server-side apply, reviews, dry runs);
- `apply`: loading a render folder, the pinned CRDs, applying every object in order;
- `rbac_checks`: what each ServiceAccount must and must not be allowed (SubjectAccessReview);
- `admission`: the pods the WorkflowTemplates describe, dry-run created where they run;
- `lint`: `argo lint --offline`, `kubectl-argo-rollouts lint`, `argo-events-check validate`;
- `report`: findings, the summary table and the exit code;
- `runner`: the order of it all, per stack.

Does not own: the render itself (`components.render`), building the upstream binaries
(`components.toolchain`), and what the program deploys (the other components).
"""
