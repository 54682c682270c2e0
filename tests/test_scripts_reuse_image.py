"""scripts/reuse_image.py, run for real against a fake ECR API on 127.0.0.1.

The fake keeps repositories in memory and enforces what ECR enforces on a copy: PutImage
refuses a manifest whose blobs (LayersNotFoundException) or child manifests
(ReferencedImagesNotFoundException) are not in the destination repository, and refuses an
`imageDigest` that is not the manifest's; CompleteLayerUpload refuses bytes that do not
hash to the digest. Layers are downloaded from a "pre-signed" URL the fake serves
itself. botocore talks to it (AWS_ENDPOINT_URL_ECR), so requests, blobs and retries are
the library's own.
"""

from __future__ import annotations

import base64
import hashlib
import json
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest

from tests.fakes import FakeServer, Request, TrickleServer, aws_env, run_script

ROOT = Path(__file__).resolve().parent.parent
SCRIPT = ROOT / "scripts" / "reuse_image.py"
SHA = "3f786850e387550fdab836ed7e6dc881de23001b"
SECRET_KEY = "test-secret-key-never-printed"
SIGNATURE = "X-Amz-Signature=presigned-signature-never-printed"
SOURCE = "integration/checkout"
DEST = "live/checkout"
OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
OCI_INDEX = "application/vnd.oci.image.index.v1+json"


def digest_of(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


class Repo:
    def __init__(self) -> None:
        self.blobs: dict[str, bytes] = {}
        self.manifests: dict[str, tuple[str, str]] = {}
        self.tags: dict[str, str] = {}


class FakeECR(FakeServer):
    """An in-memory ECR API (the operations reuse_image.py uses) and a blob download server."""

    methods = ("GET", "POST")
    content_type = "application/x-amz-json-1.1"

    def __init__(self) -> None:
        self.repos: dict[str, Repo] = {SOURCE: Repo(), DEST: Repo()}
        self.uploads: dict[str, dict[str, Any]] = {}
        self.calls: list[str] = []
        self.downloads: list[str] = []
        self.corrupt_blobs: set[str] = set()
        self.lie_about_stored_digest = False
        super().__init__()

    def answer(self, request: Request) -> tuple[int, Any] | tuple[int, bytes, str]:
        if request.method == "POST":
            body = request.json()
            operation = request.headers["x-amz-target"].rsplit(".", 1)[-1]
            self.calls.append(operation)
            return self.handle(operation, body, f"http://127.0.0.1:{self.server.server_port}")
        path, _, query = request.path.partition("?")
        _, _, repo, digest = path.split("/", 3)
        repo = repo.replace("+", "/")
        self.downloads.append(digest)
        data = self.repos[repo].blobs.get(digest) if SIGNATURE in query else None
        if data is None:
            return 403, b"denied", "text/plain"
        if digest in self.corrupt_blobs:
            data = data[:-1] + bytes([data[-1] ^ 1])
        return 200, data, "application/octet-stream"

    # ------------------------------------------------------------ seeding

    def add_blob(self, repo: str, data: bytes) -> dict[str, Any]:
        digest = digest_of(data)
        self.repos[repo].blobs[digest] = data
        return {"mediaType": "application/vnd.oci.image.layer.v1.tar+gzip", "digest": digest, "size": len(data)}

    def add_image(self, repo: str, layers: list[bytes], tag: str | None = None) -> tuple[str, str]:
        config = self.add_blob(repo, json.dumps({"architecture": "amd64", "layers": len(layers)}).encode())
        config["mediaType"] = "application/vnd.oci.image.config.v1+json"
        document = {"schemaVersion": 2, "mediaType": OCI_MANIFEST, "config": config,
                    "layers": [self.add_blob(repo, layer) for layer in layers]}
        # Not sorted, indented: the bytes, not a re-serialisation, carry the digest.
        manifest = json.dumps(document, indent=3)
        digest = digest_of(manifest.encode())
        self.repos[repo].manifests[digest] = (manifest, OCI_MANIFEST)
        if tag:
            self.repos[repo].tags[tag] = digest
        return manifest, digest

    def add_index(self, repo: str, children: list[str], tag: str) -> tuple[str, str]:
        document = {"schemaVersion": 2, "mediaType": OCI_INDEX, "manifests": [
            {"mediaType": OCI_MANIFEST, "digest": d, "size": len(self.repos[repo].manifests[d][0].encode())}
            for d in children]}
        manifest = json.dumps(document)
        digest = digest_of(manifest.encode())
        self.repos[repo].manifests[digest] = (manifest, OCI_INDEX)
        self.repos[repo].tags[tag] = digest
        return manifest, digest

    # ------------------------------------------------------------ API

    def handle(self, operation: str, body: dict[str, Any], base: str) -> tuple[int, dict[str, Any]]:
        repo = self.repos.get(body.get("repositoryName", ""))
        if repo is None:
            return error("RepositoryNotFoundException", f"The repository with name '{body.get('repositoryName')}' "
                                                        "does not exist")
        if operation == "BatchGetImage":
            images, failures = [], []
            for image_id in body["imageIds"]:
                digest = repo.tags.get(image_id["imageTag"]) if "imageTag" in image_id else image_id["imageDigest"]
                if digest not in repo.manifests:
                    failures.append({"imageId": image_id, "failureCode": "ImageNotFound",
                                     "failureReason": "Requested image not found"})
                    continue
                manifest, media_type = repo.manifests[digest]
                images.append({"repositoryName": body["repositoryName"], "imageManifest": manifest,
                               "imageManifestMediaType": media_type,
                               "imageId": {**image_id, "imageDigest": digest}})
            return 200, {"images": images, "failures": failures}
        if operation == "BatchCheckLayerAvailability":
            return 200, {"layers": [{"layerDigest": d, "layerAvailability":
                                     "AVAILABLE" if d in repo.blobs else "UNAVAILABLE"}
                                    for d in body["layerDigests"]], "failures": []}
        if operation == "GetDownloadUrlForLayer":
            digest = body["layerDigest"]
            if digest not in repo.blobs:
                return error("LayersNotFoundException", "layer not found")
            name = body["repositoryName"].replace("/", "+")
            return 200, {"downloadUrl": f"{base}/blob/{name}/{digest}?{SIGNATURE}", "layerDigest": digest}
        if operation == "InitiateLayerUpload":
            upload_id = f"upload-{len(self.uploads)}"
            self.uploads[upload_id] = {"repo": body["repositoryName"], "data": bytearray()}
            # A tiny part size, so every layer goes up in several parts.
            return 200, {"uploadId": upload_id, "partSize": 7}
        if operation == "UploadLayerPart":
            upload = self.uploads[body["uploadId"]]
            if body["partFirstByte"] != len(upload["data"]):
                return error("InvalidLayerPartException", "parts out of order")
            part = base64.b64decode(body["layerPartBlob"])
            if body["partLastByte"] != body["partFirstByte"] + len(part) - 1:
                return error("InvalidLayerPartException", "part bounds")
            upload["data"] += part
            return 200, {"uploadId": body["uploadId"], "lastByteReceived": body["partLastByte"]}
        if operation == "CompleteLayerUpload":
            upload = self.uploads.pop(body["uploadId"])
            data = bytes(upload["data"])
            if [digest_of(data)] != body["layerDigests"]:
                return error("InvalidLayerException", "digest does not match")
            repo.blobs[digest_of(data)] = data
            return 200, {"uploadId": body["uploadId"], "layerDigest": digest_of(data)}
        if operation == "PutImage":
            manifest = body["imageManifest"]
            digest = digest_of(manifest.encode())
            if body.get("imageDigest") not in (None, digest):
                return error("ImageDigestDoesNotMatchException", "digest does not match the manifest")
            document = json.loads(manifest)
            for child in document.get("manifests", []):
                if child["digest"] not in repo.manifests:
                    return error("ReferencedImagesNotFoundException", f"{child['digest']} not found")
            for blob in [document.get("config"), *document.get("layers", [])]:
                if blob and blob["digest"] not in repo.blobs:
                    return error("LayersNotFoundException", f"{blob['digest']} not found")
            tag = body.get("imageTag")
            if tag and tag in repo.tags:
                return error("ImageTagAlreadyExistsException", "tag is immutable")
            repo.manifests[digest] = (manifest, body.get("imageManifestMediaType", ""))
            if tag:
                repo.tags[tag] = digest
            stored = "sha256:" + "0" * 64 if self.lie_about_stored_digest else digest
            return 200, {"image": {"repositoryName": body["repositoryName"], "imageManifest": manifest,
                                   "imageId": {"imageDigest": stored, **({"imageTag": tag} if tag else {})}}}
        if operation == "DescribeImages":
            image_id = body["imageIds"][0]
            digest = repo.tags.get(image_id["imageTag"]) if "imageTag" in image_id else image_id.get("imageDigest")
            if digest not in repo.manifests:
                return error("ImageNotFoundException", "not found")
            return 200, {"imageDetails": [{"repositoryName": body["repositoryName"], "imageDigest": digest,
                                           "imageTags": [t for t, d in repo.tags.items() if d == digest]}]}
        return error("UnknownOperationException", operation)


def error(code: str, message: str) -> tuple[int, dict[str, Any]]:
    return 400, {"__type": code, "message": message}


@pytest.fixture
def ecr():
    fake = FakeECR()
    yield fake
    fake.close()


def run(tmp_path: Path, ecr: FakeECR | None, **env: str) -> subprocess.CompletedProcess[str]:
    base = aws_env(tmp_path, SECRET_KEY) | {
        "NO_PROXY": "127.0.0.1",
        "SOURCE_REPOSITORY": SOURCE,
        "REPOSITORY": DEST,
        "REVISION": SHA,
        "AWS_REGION": "eu-west-1",
    }
    base["AWS_ENDPOINT_URL_ECR"] = ecr.url if ecr is not None else "http://127.0.0.1:9"
    result = run_script("reuse_image", {**base, **env}, timeout=120)
    assert SECRET_KEY not in result.stdout + result.stderr
    assert "presigned-signature" not in result.stdout + result.stderr
    return result


def output(tmp_path: Path) -> str | None:
    path = tmp_path / "outputs" / "reused"
    return path.read_text() if path.exists() else None


def test_copies_an_image_by_digest_layers_included(tmp_path, ecr):
    manifest, digest = ecr.add_image(SOURCE, [b"layer one: " + b"x" * 20, b"layer two"], tag=SHA)
    result = run(tmp_path, ecr)
    assert result.returncode == 0, result.stderr
    assert output(tmp_path) == "true"
    dest = ecr.repos[DEST]
    assert dest.tags == {SHA: digest}
    assert dest.manifests[digest][0] == manifest  # the very bytes
    assert set(dest.blobs) == set(ecr.repos[SOURCE].blobs)
    assert ecr.uploads == {}  # every upload completed
    assert digest in result.stderr


def test_only_missing_blobs_are_copied(tmp_path, ecr):
    shared = b"base layer shared by both repositories"
    _, digest = ecr.add_image(SOURCE, [shared, b"the service's own layer"], tag=SHA)
    ecr.add_blob(DEST, shared)
    result = run(tmp_path, ecr)
    assert result.returncode == 0, result.stderr
    assert digest_of(shared) not in ecr.downloads
    assert len(ecr.downloads) == 2  # config and the service's layer
    assert ecr.repos[DEST].tags[SHA] == digest


def test_copies_an_index_with_its_children(tmp_path, ecr):
    _, amd64 = ecr.add_image(SOURCE, [b"amd64 layer"])
    _, arm64 = ecr.add_image(SOURCE, [b"arm64 layer", b"another"])
    index, digest = ecr.add_index(SOURCE, [amd64, arm64], SHA)
    result = run(tmp_path, ecr)
    assert result.returncode == 0, result.stderr
    dest = ecr.repos[DEST]
    assert dest.tags == {SHA: digest}
    assert dest.manifests[digest][0] == index
    assert {amd64, arm64, digest} == set(dest.manifests)


def test_no_such_tag_upstream_means_build(tmp_path, ecr):
    ecr.add_image(SOURCE, [b"another commit's layer"], tag="0" * 40)
    result = run(tmp_path, ecr)
    assert result.returncode == 0, result.stderr
    assert output(tmp_path) == "false"
    assert ecr.repos[DEST].manifests == {}
    assert ecr.calls == ["BatchGetImage"]


def test_a_corrupt_blob_fails_before_completing(tmp_path, ecr):
    _, _ = ecr.add_image(SOURCE, [b"layer that arrives corrupted"], tag=SHA)
    ecr.corrupt_blobs = set(ecr.repos[SOURCE].blobs)
    result = run(tmp_path, ecr)
    assert result.returncode != 0
    assert "digest mismatch" in result.stderr
    assert "CompleteLayerUpload" not in ecr.calls and "PutImage" not in ecr.calls
    assert ecr.repos[DEST].tags == {}
    assert output(tmp_path) is None


def test_a_manifest_that_does_not_hash_to_its_digest_fails(tmp_path, ecr):
    manifest, digest = ecr.add_image(SOURCE, [b"layer"], tag=SHA)
    ecr.repos[SOURCE].manifests[digest] = (manifest + " ", OCI_MANIFEST)
    result = run(tmp_path, ecr)
    assert result.returncode != 0
    assert "digest mismatch" in result.stderr
    assert "PutImage" not in ecr.calls
    assert output(tmp_path) is None


def test_a_different_stored_digest_fails(tmp_path, ecr):
    ecr.add_image(SOURCE, [b"layer"], tag=SHA)
    ecr.lie_about_stored_digest = True
    result = run(tmp_path, ecr)
    assert result.returncode != 0
    assert "digest mismatch" in result.stderr
    assert output(tmp_path) is None


def test_tag_already_there_with_the_same_digest_is_fine(tmp_path, ecr):
    manifest, digest = ecr.add_image(SOURCE, [b"layer"], tag=SHA)
    ecr.repos[DEST].manifests[digest] = (manifest, OCI_MANIFEST)
    ecr.repos[DEST].tags[SHA] = digest
    ecr.repos[DEST].blobs.update(ecr.repos[SOURCE].blobs)
    result = run(tmp_path, ecr)
    assert result.returncode == 0, result.stderr
    assert output(tmp_path) == "true"


def test_tag_already_there_with_another_digest_fails(tmp_path, ecr):
    ecr.add_image(SOURCE, [b"upstream layer"], tag=SHA)
    ecr.add_image(DEST, [b"a different build of the same commit"], tag=SHA)
    result = run(tmp_path, ecr)
    assert result.returncode != 0
    assert "digest mismatch" in result.stderr
    assert output(tmp_path) is None


def test_missing_upstream_repository_fails(tmp_path, ecr):
    result = run(tmp_path, ecr, SOURCE_REPOSITORY="integration/nothing-here")
    assert result.returncode != 0
    assert "RepositoryNotFoundException" in result.stderr
    assert output(tmp_path) is None


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("REVISION", "latest"),
        ("REPOSITORY", "Live/Checkout"),
        ("SOURCE_REPOSITORY", ""),
        ("SOURCE_REPOSITORY", "123.dkr.ecr.eu-west-1.amazonaws.com/integration/checkout"),
        ("SOURCE_REPOSITORY", DEST),
        ("AWS_REGION", "moon"),
    ],
)
def test_refuses_bad_input(tmp_path, name, value):
    result = run(tmp_path, None, **{name: value})
    assert result.returncode != 0
    assert name in result.stderr


def test_plain_http_download_url_off_loopback_is_refused():
    sys.path.insert(0, str(SCRIPT.parent))
    try:
        import reuse_image
    finally:
        sys.path.pop(0)
    reuse_image._check_download_url("https://prod-eu-west-1-starport-layer-bucket.s3.amazonaws.com/x")
    reuse_image._check_download_url("http://127.0.0.1:1234/x")
    with pytest.raises(reuse_image.StepError, match="only https"):
        reuse_image._check_download_url("http://example.com/x?X-Amz-Signature=s")


class _OneBlobClient:
    """The ECR calls copy_blob makes, answering with a download URL on `url`."""

    def __init__(self, url: str) -> None:
        self.url, self.parts = url, 0

    def get_download_url_for_layer(self, **_: Any) -> dict[str, str]:
        return {"downloadUrl": self.url + "/blob?" + SIGNATURE}

    def initiate_layer_upload(self, **_: Any) -> dict[str, Any]:
        return {"uploadId": "u1", "partSize": 1024}

    def upload_layer_part(self, **_: Any) -> dict[str, Any]:
        self.parts += 1
        return {}


def test_a_trickling_blob_download_ends_at_its_deadline(monkeypatch):
    """Bytes arriving every 0.2 s pass the per-read timeout; the blob's deadline still ends it."""
    sys.path.insert(0, str(SCRIPT.parent))
    try:
        import reuse_image
    finally:
        sys.path.pop(0)
    body = b"x" * 4096
    reply = b"HTTP/1.1 200 OK\r\nContent-Length: %d\r\n\r\n" % len(body) + body
    server = TrickleServer(interval=0.2, reply=reply)
    monkeypatch.setattr(reuse_image, "DOWNLOAD_TIMEOUT_SECONDS", 2)
    monkeypatch.setattr(reuse_image, "DOWNLOAD_MIN_RATE", 1024 * 1024)
    client = _OneBlobClient(server.url)
    started = time.monotonic()
    try:
        expected = r"downloading blob sha256:0+ from src failed: no complete answer within"
        with pytest.raises(reuse_image.StepError, match=expected) as error:
            reuse_image.copy_blob(client, "src", "dst", "sha256:" + "0" * 64, len(body))
    finally:
        server.close()
    assert time.monotonic() - started < 10
    assert "presigned-signature" not in str(error.value)
    assert client.parts == 0  # nothing uploaded from a cut-short stream
