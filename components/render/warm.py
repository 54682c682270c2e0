"""What every stack's render process needs imported, loaded in full before it starts.

``engine.render`` forks each stack's process from a server that imports this module
once (``forkserver`` preload), so the imports are paid once per render, not once per
stack (about half a second each). The provider SDKs load their modules lazily, on the
first attribute access, so a bare import would leave most of the work to every stack:
each module the program uses is touched here. ``tests/test_render_engine.py`` renders
the real stacks after importing this module and fails on any SDK or component module
the render still had to import, so a new one in the program shows up here.

Imports only: nothing here creates a resource, an event loop or SDK state. In the
fork server itself (and only there, ``_in_fork_server``) three more things: the
imports run with the cyclic collector off and end frozen (``gc.freeze``); a module
that fails to import is left to the stack processes, which report it like any other
failure of the program; and the server exits without its interpreter teardown.
"""

from __future__ import annotations

import atexit
import gc
import os
import sys
import types
from typing import Any


def _load() -> tuple[Any, ...]:
    """Import everything and touch one member of each lazily loaded module (which loads it)."""
    import pulumi
    import pulumi.runtime.resource
    import pulumi_aws
    import pulumi_github
    import pulumi_kubernetes
    import pulumi_random
    import pulumi_tls

    import components.access
    import components.dashboards
    import components.delivery
    import components.events
    import components.github_access
    import components.image_updater
    import components.namespaces
    import components.platform
    import components.registry
    import components.render.engine
    import components.render.mocks
    import components.sensors
    import components.slack_relay
    import components.workflows

    return (
        pulumi.ComponentResource,
        pulumi.runtime.resource.register_resource,
        pulumi_aws.ecr.Repository,
        pulumi_aws.eks.PodIdentityAssociation,
        pulumi_aws.iam.Role,
        pulumi_github.RepositoryWebhook,
        pulumi_kubernetes.admissionregistration.v1.ValidatingAdmissionPolicy,
        pulumi_kubernetes.apiextensions.CustomResource,
        pulumi_kubernetes.core.v1.ConfigMap,
        pulumi_kubernetes.helm.v3.Release,
        pulumi_kubernetes.meta.v1.ObjectMetaArgs,
        pulumi_kubernetes.networking.v1.Ingress,
        pulumi_kubernetes.policy.v1.PodDisruptionBudget,
        pulumi_kubernetes.rbac.v1.Role,
        pulumi_kubernetes.yaml.v2.ConfigGroup,
        pulumi_random.RandomPassword,
        pulumi_tls.PrivateKey,
        components.access.Access,
        components.dashboards.ReleaseDashboard,
        components.delivery.ServiceDelivery,
        components.events.EventIntake,
        components.github_access.SourceRepository,
        components.image_updater.ImageUpdaters,
        components.namespaces.Namespaces,
        components.platform.ArgoPlatform,
        components.registry.ServiceRegistry,
        components.render.engine.render_stack_in_process,
        components.render.mocks.RenderMonitor,
        components.sensors.ServiceSensor,
        components.slack_relay.SlackRelay,
        components.workflows.ReleaseWorkflows,
    )


def _in_fork_server() -> bool:
    """Whether multiprocessing's fork server is importing this module as its preload."""
    frame: types.FrameType | None = sys._getframe(1)
    while frame is not None:
        code = frame.f_code
        if code.co_name == "main" and code.co_filename.endswith(os.path.join("multiprocessing", "forkserver.py")):
            return True
        frame = frame.f_back
    return False


FAST_EXIT = _in_fork_server()
if FAST_EXIT:
    # The server outlives the render by its own teardown: freeing every module above
    # one object at a time took half a second, while the server still held the render
    # command's stdout and stderr open (a pipe reading them waited for it). It has
    # nothing to flush or report, and its stack processes have ended, so it leaves at
    # once. Never in any other process: there, os._exit would swallow the exit status.
    atexit.register(os._exit, 0)
    # Python's recipe for a process that forks without exec (the gc.freeze docs): no
    # cyclic collection while importing (a third of the import time: the collector
    # rescanned the growing set of modules and models again and again), then every
    # imported object moved to the permanent generation before the first fork, where
    # no collection, in the server or in a stack's process, ever scans it again.
    gc.disable()
    try:
        LOADED = _load()
    except Exception as exc:
        # The server would die of it (it survives only ImportError) and every stack with
        # it, unexplained. As ImportError, the server goes on with what did import, and
        # each stack process meets the failure itself and reports it with its traceback.
        raise ImportError(f"preloading the render's modules: {exc!r}") from exc
    finally:
        gc.freeze()
        gc.enable()
else:
    LOADED = _load()
