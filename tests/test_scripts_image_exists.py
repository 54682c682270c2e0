"""scripts/image_exists.py, run for real against a fake ECR API on 127.0.0.1.

botocore itself talks to the fake (AWS_ENDPOINT_URL_ECR points the real client at it),
so the request, the error parsing and the retries are the library's own. One more
test drives the decision function with botocore's Stubber.
"""

from __future__ import annotations

import importlib.util
import subprocess
import sys
from pathlib import Path

import boto3
import pytest
from botocore.stub import Stubber

from tests.fakes import FakeServer, Request, aws_env, run_script, servers

ROOT = Path(__file__).resolve().parent.parent
SCRIPT = ROOT / "scripts" / "image_exists.py"
SHA = "3f786850e387550fdab836ed7e6dc881de23001b"
SECRET_KEY = "test-secret-key-never-printed"


class FakeECR(FakeServer):
    """Answers DescribeImages with a scripted (status, body) per call; the last one repeats."""

    methods = ("POST",)
    content_type = "application/x-amz-json-1.1"

    def __init__(self, answers: list[tuple[int, dict]]) -> None:
        self.answers = answers
        self.requests: list[dict] = []
        super().__init__()

    def answer(self, request: Request) -> tuple[int, dict]:
        body = request.json()
        self.requests.append({"target": request.headers.get("x-amz-target"), "body": body})
        return self.answers[min(len(self.requests), len(self.answers)) - 1]


@pytest.fixture
def fake_ecr():
    yield from servers(lambda *answers: FakeECR(list(answers)))


def error(code: str, message: str = "") -> tuple[int, dict]:
    return 400, {"__type": code, "message": message}


def run(tmp_path: Path, ecr: FakeECR | None, **env: str) -> subprocess.CompletedProcess[str]:
    base = aws_env(tmp_path, SECRET_KEY) | {
        "REPOSITORY": "dev/checkout",
        "REVISION": SHA,
        "AWS_REGION": "eu-west-1",
    }
    # Never AWS itself: without a fake, a closed local port.
    base["AWS_ENDPOINT_URL_ECR"] = ecr.url if ecr is not None else "http://127.0.0.1:9"
    result = run_script("image_exists", {**base, **env}, timeout=120)
    assert SECRET_KEY not in result.stdout + result.stderr
    return result


def output(tmp_path: Path) -> str | None:
    path = tmp_path / "outputs" / "exists"
    return path.read_text() if path.exists() else None


def test_found(tmp_path, fake_ecr):
    ecr = fake_ecr((200, {"imageDetails": [{"repositoryName": "dev/checkout", "imageTags": [SHA]}]}))
    result = run(tmp_path, ecr)
    assert result.returncode == 0, result.stderr
    assert output(tmp_path) == "true"
    assert ecr.requests == [
        {
            "target": "AmazonEC2ContainerRegistry_V20150921.DescribeImages",
            "body": {"repositoryName": "dev/checkout", "imageIds": [{"imageTag": SHA}]},
        }
    ]


def test_not_found(tmp_path, fake_ecr):
    ecr = fake_ecr(error("ImageNotFoundException", f"The image with imageId {{imageTag:'{SHA}'}} does not exist"))
    result = run(tmp_path, ecr)
    assert result.returncode == 0, result.stderr
    assert output(tmp_path) == "false"


@pytest.mark.parametrize(
    "answer",
    [
        error("RepositoryNotFoundException", "The repository with name 'dev/checkout' does not exist"),
        error("AccessDeniedException", "User is not authorized to perform: ecr:DescribeImages"),
        (500, {"__type": "ServerException", "message": "internal"}),
    ],
)
def test_any_other_error_fails_the_step(tmp_path, fake_ecr, answer):
    result = run(tmp_path, fake_ecr(answer))
    assert result.returncode != 0
    assert answer[1]["__type"] in result.stderr
    assert output(tmp_path) is None


def test_throttling_is_retried_then_fails(tmp_path, fake_ecr):
    ecr = fake_ecr(error("ThrottlingException", "Rate exceeded"))
    result = run(tmp_path, ecr)
    assert result.returncode != 0
    assert "ThrottlingException" in result.stderr
    assert len(ecr.requests) == 2  # AWS_MAX_ATTEMPTS
    assert output(tmp_path) is None


def test_throttling_then_success(tmp_path, fake_ecr):
    ecr = fake_ecr(error("ThrottlingException", "Rate exceeded"), (200, {"imageDetails": [{"imageTags": [SHA]}]}))
    result = run(tmp_path, ecr)
    assert result.returncode == 0, result.stderr
    assert output(tmp_path) == "true"


def test_an_answer_without_the_image_fails(tmp_path, fake_ecr):
    result = run(tmp_path, fake_ecr((200, {"imageDetails": []})))
    assert result.returncode != 0
    assert output(tmp_path) is None


def test_no_credentials_fails(tmp_path, fake_ecr):
    ecr = fake_ecr((200, {"imageDetails": []}))
    result = run(tmp_path, ecr, AWS_ACCESS_KEY_ID="", AWS_SECRET_ACCESS_KEY="")
    assert result.returncode != 0
    assert "credentials" in result.stderr.lower()
    assert ecr.requests == []


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("REVISION", "latest"),
        ("REVISION", SHA.upper()),
        ("REPOSITORY", "Dev/Checkout"),
        ("REPOSITORY", ""),
        ("REPOSITORY", "123.dkr.ecr.eu-west-1.amazonaws.com/dev/checkout"),
        ("AWS_REGION", ""),
    ],
)
def test_refuses_bad_input(tmp_path, name, value):
    result = run(tmp_path, None, **{name: value})
    assert result.returncode != 0
    assert name in result.stderr


def load_script():
    spec = importlib.util.spec_from_file_location("image_exists", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    sys.modules["image_exists"] = module
    spec.loader.exec_module(module)
    return module


def test_decision_with_stubber():
    module = load_script()
    client = boto3.client("ecr", region_name="eu-west-1", aws_access_key_id="a", aws_secret_access_key="b")
    params = {"repositoryName": "dev/checkout", "imageIds": [{"imageTag": SHA}]}
    with Stubber(client) as stub:
        stub.add_response("describe_images", {"imageDetails": [{"imageTags": [SHA]}]}, params)
        stub.add_client_error("describe_images", "ImageNotFoundException", expected_params=params)
        stub.add_client_error("describe_images", "RepositoryNotFoundException", expected_params=params)
        assert module.image_exists(client, "dev/checkout", SHA) is True
        assert module.image_exists(client, "dev/checkout", SHA) is False
        with pytest.raises(module.StepError, match="RepositoryNotFoundException"):
            module.image_exists(client, "dev/checkout", SHA)
