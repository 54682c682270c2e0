"""Build once, promote many: copy this commit's image, by digest, from an upstream repository.

Step script of the build Workflow when the stack sets `promoteFrom` (docs/release-contract.md,
sections 3 and 4); runs in the `release-tools` image as `python3 reuse_image.py`, after
`image_exists.py` answered "false":

    SOURCE_REPOSITORY  ECR repository (name, not URL) in this account and region that may
                       already hold the image: the upstream stack's repository, or the
                       pull-through cache repository that mirrors it (components.registry)
    REPOSITORY         this stack's ECR repository
    REVISION           full commit sha (40 lowercase hex): the tag in both repositories
    AWS_REGION         region of both repositories
    OUTPUT_DIR         where outputs go, default /tmp/outputs

Output: `$OUTPUT_DIR/reused` = "true" (the image is now in REPOSITORY under the tag, with
the source's digest: BuildKit is skipped) or "false" (SOURCE_REPOSITORY has no such tag:
build as usual). Anything else fails the step.

Owns the copy through the ECR API (manifests by digest, missing blobs streamed from
pre-signed URLs, each hashed and checked), never logging a pre-signed URL. Does not own:
the repositories, the pull-through cache or the grants (components.registry).

Decisions: docs/decisions/0420-reuse-image-copies-blobs-through-the-ecr-api.md.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import sys
import urllib.parse
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError

# Run as a script, this directory is sys.path[0]; loaded by file path (tests), it is not.
if (_HERE := str(Path(__file__).resolve().parent)) not in sys.path:
    sys.path.append(_HERE)
import _ecr
from _common import StepError, commit_sha, loopback_ip, write_output
from _retry import Deadline, DeadlineExceeded, HTTPStatusError, Unreachable, stream

DIGEST = re.compile(r"^sha256:[0-9a-f]{64}$")
READ_TIMEOUT_SECONDS = 60
DOWNLOAD_TIMEOUT_SECONDS = 60
# A blob's download must be over within DOWNLOAD_TIMEOUT_SECONDS plus its size at this rate
# (bytes per second): a server trickling bytes cannot hold the step until the Workflow's deadline.
DOWNLOAD_MIN_RATE = 1024 * 1024
# Used only when InitiateLayerUpload names no part size.
DEFAULT_PART_SIZE = 10 * 1024 * 1024
# BatchCheckLayerAvailability takes at most 100 digests per call.
LAYER_CHECK_BATCH = 100

OCI_INDEX = "application/vnd.oci.image.index.v1+json"
DOCKER_LIST = "application/vnd.docker.distribution.manifest.list.v2+json"
OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
DOCKER_MANIFEST = "application/vnd.docker.distribution.manifest.v2+json"
INDEX_TYPES = (OCI_INDEX, DOCKER_LIST)
MANIFEST_TYPES = (OCI_MANIFEST, DOCKER_MANIFEST)
ACCEPTED_MEDIA_TYPES = [*INDEX_TYPES, *MANIFEST_TYPES]


def log(message: str) -> None:
    print(f"reuse_image: {message}", file=sys.stderr, flush=True)


def sha256_digest(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


def _call(client: Any, operation: str, **params: Any) -> dict[str, Any]:
    """One ECR call; any error becomes a StepError naming the operation and ECR's code."""
    try:
        return getattr(client, operation)(**params)  # type: ignore[no-any-return]
    except (ClientError, BotoCoreError) as error:
        raise _ecr.failure(operation, error) from None


def get_manifest(client: Any, repository: str, image_id: dict[str, str]) -> tuple[str, str, str] | None:
    """(manifest text, media type, digest) of one image, or None when ECR says it is not there.

    The digest is checked against the bytes: what is put later is exactly what was tested.
    """
    response = _call(client, "batch_get_image", repositoryName=repository, imageIds=[image_id],
                     acceptedMediaTypes=ACCEPTED_MEDIA_TYPES)
    images = response.get("images") or []
    if not images:
        failures = response.get("failures") or []
        codes = sorted({f.get("failureCode", "Unknown") for f in failures})
        if codes == ["ImageNotFound"]:
            return None
        reasons = "; ".join(f"{f.get('failureCode')}: {f.get('failureReason', '')}" for f in failures)
        raise StepError(f"ECR BatchGetImage on {repository} returned no image ({reasons or 'no reason given'})")
    image = images[0]
    manifest = image.get("imageManifest", "")
    digest = image.get("imageId", {}).get("imageDigest", "")
    if not DIGEST.fullmatch(digest):
        raise StepError(f"ECR BatchGetImage on {repository} named no sha256 digest for {image_id}")
    actual = sha256_digest(manifest.encode("utf-8"))
    if actual != digest:
        raise StepError(f"digest mismatch: the manifest of {repository} {image_id} hashes to {actual}, "
                        f"ECR names {digest}")
    if "imageDigest" in image_id and image_id["imageDigest"] != digest:
        raise StepError(f"digest mismatch: asked {repository} for {image_id['imageDigest']}, got {digest}")
    try:
        document = json.loads(manifest)
    except ValueError:
        raise StepError(f"the manifest {digest} of {repository} is not JSON") from None
    media_type = image.get("imageManifestMediaType") or document.get("mediaType") or ""
    if media_type not in ACCEPTED_MEDIA_TYPES:
        raise StepError(f"the manifest {digest} of {repository} has media type {media_type!r}, "
                        f"not one of {', '.join(ACCEPTED_MEDIA_TYPES)}")
    return manifest, media_type, digest


def _descriptor(entry: Any, where: str) -> tuple[str, int]:
    if not isinstance(entry, dict) or not DIGEST.fullmatch(str(entry.get("digest", ""))) \
            or not isinstance(entry.get("size"), int) or entry["size"] < 0:
        raise StepError(f"{where}: a descriptor without a sha256 digest and a size")
    return entry["digest"], entry["size"]


def blobs_of(manifest: str, digest: str) -> list[tuple[str, int]]:
    """(digest, size) of the config and every layer of an image manifest, in order, once each.

    Foreign layers (descriptors with `urls`) are not in any registry to copy from; a
    manifest with one is refused rather than half-copied.
    """
    document = json.loads(manifest)
    entries = [document.get("config"), *(document.get("layers") or [])]
    found: dict[str, int] = {}
    for entry in entries:
        if isinstance(entry, dict) and entry.get("urls"):
            raise StepError(f"{digest}: foreign layer {entry.get('digest')} cannot be copied")
        blob, size = _descriptor(entry, digest)
        found.setdefault(blob, size)
    return list(found.items())


def children_of(manifest: str, digest: str) -> list[str]:
    document = json.loads(manifest)
    return list(dict.fromkeys(_descriptor(e, digest)[0] for e in document.get("manifests") or []))


def missing_blobs(client: Any, repository: str, blobs: list[tuple[str, int]]) -> list[tuple[str, int]]:
    """The blobs the destination repository does not have yet."""
    available: set[str] = set()
    digests = [d for d, _ in blobs]
    for start in range(0, len(digests), LAYER_CHECK_BATCH):
        response = _call(client, "batch_check_layer_availability", repositoryName=repository,
                         layerDigests=digests[start:start + LAYER_CHECK_BATCH])
        available |= {layer["layerDigest"] for layer in response.get("layers") or []
                      if layer.get("layerAvailability") == "AVAILABLE"}
    return [(d, s) for d, s in blobs if d not in available]


def _check_download_url(url: str) -> None:
    parts = urllib.parse.urlsplit(url)
    if parts.scheme == "https":
        return
    # A loopback IP only (the tests' fake), not even `localhost`.
    if not (parts.scheme == "http" and parts.hostname and loopback_ip(parts.hostname)):
        # The URL is pre-signed: name only its scheme, never the URL.
        raise StepError(f"ECR handed a layer URL with scheme {parts.scheme!r}; only https is accepted")


def _chunks(response: Any, size: int) -> Iterator[bytes]:
    while True:
        buffer = bytearray()
        while len(buffer) < size:
            data = response.read(size - len(buffer))
            if not data:
                break
            buffer += data
        if not buffer:
            return
        yield bytes(buffer)
        if len(buffer) < size:
            return


def copy_blob(client: Any, source: str, destination: str, digest: str, size: int) -> None:
    """Stream one blob from the source repository into the destination, verified."""
    location = _call(client, "get_download_url_for_layer", repositoryName=source, layerDigest=digest)
    url = location.get("downloadUrl", "")
    if location.get("layerDigest", digest) != digest:
        raise StepError(f"digest mismatch: asked {source} for blob {digest}, ECR named {location.get('layerDigest')}")
    _check_download_url(url)
    upload = _call(client, "initiate_layer_upload", repositoryName=destination)
    upload_id = upload["uploadId"]
    part_size = int(upload.get("partSize") or DEFAULT_PART_SIZE)
    hasher = hashlib.sha256()
    offset = 0
    deadline = Deadline(DOWNLOAD_TIMEOUT_SECONDS + size / DOWNLOAD_MIN_RATE)
    try:
        with stream(urllib.request.Request(url), deadline, timeout=DOWNLOAD_TIMEOUT_SECONDS) as response:
            for chunk in _chunks(response, part_size):
                hasher.update(chunk)
                _call(client, "upload_layer_part", repositoryName=destination, uploadId=upload_id,
                      partFirstByte=offset, partLastByte=offset + len(chunk) - 1, layerPartBlob=chunk)
                offset += len(chunk)
    except (DeadlineExceeded, Unreachable, HTTPStatusError) as error:
        # These name the method and the URL's path, never its signed query. A redirect is
        # refused like any other status: the pre-signed URL is the only place bytes come from.
        reason = str(error).split(": ", 1)[-1]
        raise StepError(f"downloading blob {digest} from {source} failed: {reason}") from None
    actual = "sha256:" + hasher.hexdigest()
    if actual != digest or offset != size:
        raise StepError(f"digest mismatch: blob {digest} ({size} bytes) of {source} arrived as {actual} "
                        f"({offset} bytes); not completing the upload")
    done = _call(client, "complete_layer_upload", repositoryName=destination, uploadId=upload_id,
                 layerDigests=[digest])
    if done.get("layerDigest") != digest:
        raise StepError(f"digest mismatch: ECR completed blob {digest} in {destination} as {done.get('layerDigest')}")


def put_manifest(client: Any, repository: str, manifest: str, media_type: str, digest: str,
                 tag: str | None) -> None:
    """PutImage of the exact bytes, by digest; the digest ECR stores must be the source's."""
    params: dict[str, Any] = {"repositoryName": repository, "imageManifest": manifest,
                              "imageManifestMediaType": media_type, "imageDigest": digest}
    if tag is not None:
        params["imageTag"] = tag
    try:
        response = client.put_image(**params)
    except ClientError as error:
        if _ecr.error_code(error) in {"ImageAlreadyExistsException", "ImageTagAlreadyExistsException"}:
            # A concurrent copy or build got there first: fine only if it is the same image.
            stored = stored_digest(client, repository, {"imageTag": tag} if tag else {"imageDigest": digest})
            if stored != digest:
                raise StepError(f"digest mismatch: {repository}:{tag} already holds {stored}, "
                                f"the upstream image is {digest}") from None
            return
        raise _ecr.failure(f"PutImage on {repository}", error) from None
    except BotoCoreError as error:
        raise _ecr.failure(f"PutImage on {repository}", error) from None
    stored = response.get("image", {}).get("imageId", {}).get("imageDigest")
    if stored != digest:
        raise StepError(f"digest mismatch: ECR stored {repository} {tag or digest} as {stored}, "
                        f"the upstream image is {digest}")


def stored_digest(client: Any, repository: str, image_id: dict[str, str]) -> str | None:
    response = _call(client, "describe_images", repositoryName=repository, imageIds=[image_id])
    details = response.get("imageDetails") or []
    return details[0].get("imageDigest") if details else None


def copy_image_manifest(client: Any, source: str, destination: str, manifest: str, digest: str) -> int:
    """Copy the blobs one image manifest needs into the destination; returns how many were copied."""
    missing = missing_blobs(client, destination, blobs_of(manifest, digest))
    for blob, size in missing:
        copy_blob(client, source, destination, blob, size)
    return len(missing)


def reuse(client: Any, source: str, destination: str, tag: str) -> str | None:
    """Copy `source:tag` into `destination:tag` by digest; its digest, or None if the source has no such tag."""
    found = get_manifest(client, source, {"imageTag": tag})
    if found is None:
        return None
    manifest, media_type, digest = found
    copied = 0
    if media_type in INDEX_TYPES:
        for child in children_of(manifest, digest):
            child_found = get_manifest(client, source, {"imageDigest": child})
            if child_found is None:
                raise StepError(f"{source}: the index {digest} names {child}, which is not there")
            child_manifest, child_type, _ = child_found
            if child_type not in MANIFEST_TYPES:
                raise StepError(f"{source}: nested index {child} is not supported")
            copied += copy_image_manifest(client, source, destination, child_manifest, child)
            put_manifest(client, destination, child_manifest, child_type, child, None)
    else:
        copied += copy_image_manifest(client, source, destination, manifest, digest)
    put_manifest(client, destination, manifest, media_type, digest, tag)
    stored = stored_digest(client, destination, {"imageTag": tag})
    if stored != digest:
        raise StepError(f"digest mismatch: {destination}:{tag} is {stored} after the copy, "
                        f"the upstream image is {digest}")
    log(f"{source}:{tag} -> {destination}:{tag} as {digest} ({copied} blobs copied)")
    return digest


def main() -> int:
    try:
        values = {name: _ecr.repository(os.environ, name) for name in ("SOURCE_REPOSITORY", "REPOSITORY")}
        if values["SOURCE_REPOSITORY"] == values["REPOSITORY"]:
            raise StepError("SOURCE_REPOSITORY and REPOSITORY must differ")
        revision = commit_sha(os.environ)
        client = _ecr.client(_ecr.region(os.environ), READ_TIMEOUT_SECONDS)
        digest = reuse(client, values["SOURCE_REPOSITORY"], values["REPOSITORY"], revision)
        if digest is None:
            log(f"{values['SOURCE_REPOSITORY']}:{revision} does not exist: build")
        write_output("reused", "false" if digest is None else "true")
    except StepError as error:
        log(f"error: {error}")
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
