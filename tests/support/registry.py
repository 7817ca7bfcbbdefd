"""An image in an emulated ECR without Docker: what `docker push` leaves in a registry (blobs uploaded, then the
manifest put under a tag), for the Build stand-in of the tests and the rehearsal.

moto 5.2.5 accepts layer uploads but keeps only their sizes and does not implement GetDownloadUrlForLayer, so
`BlobStore` keeps the bytes it pushed and answers downloads itself: `with_downloads(ecr)` is the ECR client with that
one call served from the store, `fetch` reads a URL it handed out.
"""

from __future__ import annotations

import gzip
import hashlib
import io
import json
import tarfile
from collections.abc import Iterator
from typing import Any

MANIFEST_TYPE = "application/vnd.docker.distribution.manifest.v2+json"
BLOB_URL_PREFIX = "blob-store://"


def _digest(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


def layer_of(files: dict[str, bytes]) -> bytes:
    """A gzipped tar layer holding these files (deterministic: fixed times)."""
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w") as archive:
        for name, content in sorted(files.items()):
            info = tarfile.TarInfo(name)
            info.size, info.mtime = len(content), 0
            archive.addfile(info, io.BytesIO(content))
    return gzip.compress(buffer.getvalue(), mtime=0)


class BlobStore:
    def __init__(self) -> None:
        self.blobs: dict[str, bytes] = {}

    def push(self, ecr: Any, repository: str, tag: str, image_config: dict[str, Any],
             layers: list[bytes]) -> str:
        """Upload the config and layer blobs, then put the manifest under `tag`; returns the manifest."""
        config_blob = json.dumps(image_config, sort_keys=True).encode()
        descriptors = []
        for media_type, blob in [("application/vnd.docker.container.image.v1+json", config_blob),
                                 *(("application/vnd.docker.image.rootfs.diff.tar.gzip", layer) for layer in layers)]:
            digest = _digest(blob)
            self.blobs[digest] = blob
            upload = ecr.initiate_layer_upload(repositoryName=repository)["uploadId"]
            ecr.upload_layer_part(repositoryName=repository, uploadId=upload, partFirstByte=0,
                                  partLastByte=len(blob) - 1, layerPartBlob=blob)
            ecr.complete_layer_upload(repositoryName=repository, uploadId=upload, layerDigests=[digest])
            descriptors.append({"mediaType": media_type, "size": len(blob), "digest": digest})
        manifest = json.dumps({"schemaVersion": 2, "mediaType": MANIFEST_TYPE, "config": descriptors[0],
                               "layers": descriptors[1:]})
        ecr.put_image(repositoryName=repository, imageManifest=manifest, imageManifestMediaType=MANIFEST_TYPE,
                      imageTag=tag)
        return manifest

    def fetch(self, url: str) -> Iterator[bytes]:
        blob = self.blobs[url.removeprefix(BLOB_URL_PREFIX)]
        for start in range(0, len(blob), 1 << 20):
            yield blob[start:start + (1 << 20)]

    def with_downloads(self, ecr: Any) -> Any:
        return _WithDownloads(ecr, self)


class _WithDownloads:
    """An ECR client whose GetDownloadUrlForLayer (missing in moto 5.2.5) points into the blob store."""

    def __init__(self, ecr: Any, store: BlobStore):
        self._ecr, self._store = ecr, store

    def get_download_url_for_layer(self, repositoryName: str, layerDigest: str) -> dict[str, str]:  # noqa: N803
        if layerDigest not in self._store.blobs:
            raise KeyError(f"the blob store never pushed {layerDigest}")
        return {"downloadUrl": BLOB_URL_PREFIX + layerDigest, "layerDigest": layerDigest}

    def __getattr__(self, name: str) -> Any:
        return getattr(self._ecr, name)
