"""Offline stand-ins for upstream tools: only what the upstream tools the tests run do not check.

Upstream code now judges the render and the built objects (components/verify,
components/upstream_events, tests/upstream_support.py):
- schemas, CEL rules and admission of every Kubernetes, Argo CD, Argo Rollouts and Argo
  Workflows object: a local kube-apiserver v1.34.4 with the pinned CRDs (server-side
  apply with strict field validation). It replaced ``validate_manifests`` (deleted);
- Argo Events objects: ``argo-events-check validate`` (argo-events v1.9.10's own
  validation, strict decoding). It replaced ``validate_manifests`` for them;
- what a Sensor does with a GitHub delivery: ``argo-events-check simulate`` (argo-events'
  own EventSource, filter and k8s trigger code). It replaced ``sensor_sim`` and its
  ``gotemplate`` (deleted);
- WorkflowTemplates and the Workflows the Sensors create: ``argo lint --offline``.

What is left here, and why:
- ``workflow_lint`` (with ``gosem``, which only its command line's Sensor mode imports):
  kept only for its checks *stricter than* ``argo lint`` (messages ending in
  "[stricter than argo lint]"): a ``{{workflow.parameters.X}}`` a WorkflowTemplate uses
  but does not declare (argo lint exempts templates), an argument the called template or
  the referenced WorkflowTemplate does not declare (upstream silently ignores it), a step
  or task output used before it exists. Tests call it through
  ``tests.upstream_support.beyond_argo_lint``, which keeps only those findings; argo lint
  judges everything else.
- ``check_helm_values``: values keys a chart does not know, against the chart's own default
  values in ``upstream/charts``. No upstream tool runs here for it (no Helm: the charts are
  not rendered, and the pinned charts carry no values schema), so it stays whole.

They were written outside this project from the upstream Go sources (the commits are in each
module's docstring) and are kept as written, apart from their import paths and where they
find their data, so that they can be compared with their source or dropped as a whole. For
that reason ruff does not lint this folder (pyproject.toml); their own tests are the
``test_*.py`` files next to them. Run one from the command line with
``python -m tests.checks.<module> --help`` from the repository root.
"""
