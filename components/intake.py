"""Where GitHub deliveries enter the cluster: the one place webhook URLs are derived.

Owns: the event name, endpoint path, port and Secret name of each source repository
on the `github` EventSource, and the public URL GitHub is given for it. The webhook
(`components.github_access`) and the EventSource both call these functions, so the URL
GitHub posts to and the endpoint the EventSource listens on cannot drift apart.
Does not own: the EventSource, Service or Ingress objects themselves.
"""

from __future__ import annotations

from components import names

EVENTSOURCE_NAME = "github"
EVENTSOURCE_PORT = 12000
WEBHOOK_SECRET_KEY = "secret"


def event_name(repo: str) -> str:
    """The EventSource event (and Sensor eventName) of one source repository."""
    return names.repo_slug(repo)


def endpoint(repo: str) -> str:
    """HTTP path the EventSource serves for one repository's deliveries."""
    return f"/github/{names.repo_slug(repo)}"


def webhook_url(events_host: str, repo: str) -> str:
    """The https URL given to GitHub for one repository (TLS terminated at the Ingress)."""
    return f"https://{events_host}{endpoint(repo)}"


def webhook_secret_name(repo: str) -> str:
    """Kubernetes Secret (events namespace) holding one repository's HMAC secret."""
    return f"github-webhook-{names.repo_slug(repo)}"
