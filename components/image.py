"""The container image every component runs in, pinned by tag.

Set `HYBRID_DIALOGUE_IMAGE` when compiling to use another registry or tag
(for example `registry.example.com/team/hybrid-dialogue:0.1.0-gpu`). The
image must contain the locked dependencies and this package, as
`infra/docker/Dockerfile` builds it.
"""

from __future__ import annotations

import os
import re

from hybrid_dialogue.kubeflow import KubeflowError

DEFAULT_IMAGE = "ghcr.io/hybrid-dialogue/hybrid-dialogue:0.1.0"
IMAGE_ENV = "HYBRID_DIALOGUE_IMAGE"

# A reference ends in `:TAG` or `@sha256:DIGEST`, and a ':' before the last
# '/' is a registry port, not a tag.
_PINNED = re.compile(r"^([^@\s]+/)?[^/:@\s]+(:[\w][\w.-]{0,127}|@sha256:[0-9a-f]{64})$")


def pinned_image(reference: str) -> str:
    """Check that `reference` is pinned by a tag other than `latest` or by a digest, and return it."""
    if not _PINNED.match(reference) or reference.endswith(":latest"):
        raise KubeflowError(
            f"container image {reference!r} is not pinned: use REGISTRY/NAME:TAG with a "
            f"version tag (not 'latest') or REGISTRY/NAME@sha256:DIGEST, in ${IMAGE_ENV}"
        )
    return reference


IMAGE = pinned_image(os.environ.get(IMAGE_ENV) or DEFAULT_IMAGE)
