"""Offline checks the tests run on what the program renders: stand-ins for upstream tools.

Each module imitates an upstream binary closely enough to catch what that binary would
reject, without a cluster, a network or Go. They are stand-ins: when the real tool can run
in CI, the test that uses a module here should call the tool and the module should go.

- ``validate_manifests``: strict schema validation of every object, against the CRD schemas
  and the Argo Events swagger in ``upstream/schemas`` (stand-in for
  ``kubectl apply --dry-run=server --validate=strict`` against a cluster with the CRDs).
- ``check_helm_values``: values keys a chart does not know, against the chart's own default
  values in ``upstream/charts`` (stand-in for ``helm template`` with a values schema).
- ``sensor_sim`` (with ``gosem`` and ``gotemplate``): what an Argo Events Sensor does with a
  GitHub delivery (``upstream/github-webhooks``), with the controller's filter semantics
  (stand-in for a Sensor running in a test cluster).
- ``workflow_lint``: what ``argo lint`` says of a WorkflowTemplate or the Workflow a Sensor
  creates.

They were written outside this project from the upstream Go sources (the commits are in each
module's docstring) and are kept as written, apart from their import paths and where they
find their data, so that they can be compared with their source or dropped as a whole. For
that reason ruff does not lint this folder (pyproject.toml); their own tests are the
``test_*.py`` files next to them. Run one from the command line with
``python -m tests.checks.<module> --help`` from the repository root.
"""
