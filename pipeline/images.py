"""Promote the serving image into an environment's repository: `copy_image` moves one tag from the pipeline's
build repository to the environment's, through the ECR API alone (no Docker daemon, so the deploy step needs no
privileged build), and across accounts when the environment has its own.

Run by the deploy step after that environment's approval, so a later environment receives an image only once
approved, and its repository holds only images it was deployed with.
"""

from __future__ import annotations

import json
import urllib.request
from collections.abc import Callable, Iterator
from typing import Any

from pipeline.commands import StepFailed

# Image manifests the copy understands: a single-platform image (the serving image is built for linux/amd64).
MANIFEST_TYPES = ("application/vnd.docker.distribution.manifest.v2+json", "application/vnd.oci.image.manifest.v1+json")
# ECR's upload parts: at least 5 MiB each but the last; 20 MiB keeps memory small and calls few.
PART_BYTES = 20 * 1024 * 1024

Fetch = Callable[[str], Iterator[bytes]]


def fetch_url(url: str, chunk_bytes: int = PART_BYTES) -> Iterator[bytes]:
    """The layer's bytes from ECR's pre-signed download URL, in chunks."""
    with urllib.request.urlopen(url, timeout=300) as response:  # noqa: S310 - an https URL ECR just signed
        while chunk := response.read(chunk_bytes):
            yield chunk


def tag_exists(ecr: Any, repository: str, tag: str) -> bool:
    try:
        ecr.describe_images(repositoryName=repository, imageIds=[{"imageTag": tag}])
        return True
    except ecr.exceptions.ImageNotFoundException:
        return False


def _blobs(manifest: dict[str, Any]) -> list[str]:
    return [manifest["config"]["digest"], *(layer["digest"] for layer in manifest.get("layers", []))]


def copy_image(source: Any, source_repository: str, target: Any, target_repository: str, tag: str,
               fetch: Fetch = fetch_url, say: Callable[[str], None] = print) -> bool:
    """Copy `source_repository:tag` to `target_repository:tag`; False when the target has the tag already (tags
    are immutable, so it is the same image)."""
    if tag_exists(target, target_repository, tag):
        say(f"{target_repository}:{tag} is there already (tags are immutable): not copied again")
        return False
    images = source.batch_get_image(repositoryName=source_repository, imageIds=[{"imageTag": tag}],
                                    acceptedMediaTypes=list(MANIFEST_TYPES))
    if not images["images"]:
        raise StepFailed(f"no image {source_repository}:{tag} in the build repository: did the Build stage run for "
                         "this commit?")
    image = images["images"][0]
    manifest_text = image["imageManifest"]
    manifest = json.loads(manifest_text)
    media_type = image.get("imageManifestMediaType") or manifest.get("mediaType")
    if media_type not in MANIFEST_TYPES:
        raise StepFailed(f"{source_repository}:{tag} is a {media_type}; only single-platform images are copied "
                         f"({', '.join(MANIFEST_TYPES)})")
    digests = _blobs(manifest)
    available = target.batch_check_layer_availability(repositoryName=target_repository, layerDigests=digests)
    present = {layer["layerDigest"] for layer in available.get("layers", [])
               if layer.get("layerAvailability") == "AVAILABLE"}
    missing = [digest for digest in digests if digest not in present]
    for digest in missing:
        url = source.get_download_url_for_layer(repositoryName=source_repository, layerDigest=digest)["downloadUrl"]
        upload_id = target.initiate_layer_upload(repositoryName=target_repository)["uploadId"]
        first = 0
        for part in fetch(url):
            target.upload_layer_part(repositoryName=target_repository, uploadId=upload_id, partFirstByte=first,
                                     partLastByte=first + len(part) - 1, layerPartBlob=part)
            first += len(part)
        completed = target.complete_layer_upload(repositoryName=target_repository, uploadId=upload_id,
                                                 layerDigests=[digest])
        if completed["layerDigest"] != digest:
            raise StepFailed(f"layer {digest} of {source_repository}:{tag} arrived as {completed['layerDigest']}")
    target.put_image(repositoryName=target_repository, imageManifest=manifest_text,
                     imageManifestMediaType=media_type, imageTag=tag)
    say(f"copied {source_repository}:{tag} to {target_repository} ({len(missing)} of {len(digests)} blobs uploaded)")
    return True
