from pathlib import Path

from tests.checks.check_helm_values import problems

CHARTS = Path(__file__).resolve().parents[2] / "upstream" / "charts"


def test_known_and_documented_keys_pass():
    vals = {"crds": {"install": False},
            "configs": {"rbac": {"policy.default": "role:readonly"}, "cm": {"users.anonymous.enabled": "false"}},
            "server": {"ingress": {"enabled": True, "hostname": "cd.example.com"}},
            "notifications": {"notifiers": {"service.slack": "token: $slack-token"}}}
    assert problems(CHARTS / "argo-cd", vals) == []


def test_misspelt_keys_are_caught_with_a_hint():
    got = problems(CHARTS / "argo-cd", {"confgs": {}, "server": {"ingres": {"enabled": True}}})
    assert any("confgs" in p and "configs" in p for p in got)
    assert any("server.ingres" in p and "ingress" in p for p in got)


def test_rollouts_chart_has_no_crds_map():
    assert problems(CHARTS / "argo-rollouts", {"installCRDs": False}) == []
    assert any("crds" in p for p in problems(CHARTS / "argo-rollouts", {"crds": {"install": False}}))
