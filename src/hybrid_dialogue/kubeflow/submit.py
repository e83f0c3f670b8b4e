"""Upload the compiled pipeline to a Kubeflow Pipelines endpoint and start a run with `kfp.Client`.

Authentication comes from the environment: `KFP_TOKEN` is sent as a bearer
token, `KFP_COOKIE` as a `Cookie` header (for example the
`authservice_session=...` cookie of a Kubeflow deployment behind Dex).
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import urllib.error
import urllib.request
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from hybrid_dialogue.kubeflow import KubeflowError

logger = logging.getLogger(__name__)

TOKEN_ENV = "KFP_TOKEN"
COOKIE_ENV = "KFP_COOKIE"
HEALTHZ_PATH = "/apis/v2beta1/healthz"
_CREDENTIALS_HINT = f"set {TOKEN_ENV} to a bearer token or {COOKIE_ENV} to a session cookie (NAME=VALUE)"


@dataclass(frozen=True)
class Credentials:
    """A bearer token and a cookie for the Kubeflow Pipelines API. Either may be absent."""

    token: str | None = None
    cookie: str | None = None

    @classmethod
    def from_environment(cls) -> Credentials:
        return cls(token=os.environ.get(TOKEN_ENV) or None, cookie=os.environ.get(COOKIE_ENV) or None)

    def headers(self) -> dict[str, str]:
        headers = {}
        if self.token:
            headers["Authorization"] = f"Bearer {self.token}"
        if self.cookie:
            headers["Cookie"] = self.cookie
        return headers

    def describe(self) -> str:
        """Name the credential kinds in use, never their values."""
        kinds = [name for name, value in ((TOKEN_ENV, self.token), (COOKIE_ENV, self.cookie)) if value]
        return " and ".join(kinds) or "no credentials"


@dataclass(frozen=True)
class SubmittedRun:
    """Identifiers of what `submit_pipeline` created or reused on the server."""

    pipeline_id: str
    pipeline_version_id: str
    experiment_id: str
    run_id: str
    run_url: str


def check_endpoint(host: str, credentials: Credentials, timeout_s: float = 10.0) -> None:
    """Call the health endpoint once, so an unreachable host or rejected credentials fail fast.

    `kfp.Client` (kfp 2.17) tries an unreachable host 5 times, 5 seconds
    apart, and then raises a `TimeoutError` that hides the cause.
    """
    url = host.rstrip("/") + HEALTHZ_PATH
    request = urllib.request.Request(url, headers={"Accept": "application/json", **credentials.headers()})
    try:
        with urllib.request.urlopen(request, timeout=timeout_s) as response:  # noqa: S310 (the user's own endpoint)
            content_type = response.headers.get("Content-Type", "")
            body = response.read(65536)
    except urllib.error.HTTPError as error:
        if error.code in (401, 403):
            raise KubeflowError(
                f"{host} rejected the request with HTTP {error.code} ({credentials.describe()} sent): {_CREDENTIALS_HINT}"
            ) from None
        raise KubeflowError(
            f"{url} returned HTTP {error.code}: check that --host is the Kubeflow Pipelines API "
            "(the ml-pipeline-ui service or the Kubeflow gateway), not another service"
        ) from None
    except (urllib.error.URLError, TimeoutError, OSError) as error:
        reason = getattr(error, "reason", error)
        raise KubeflowError(
            f"Kubeflow Pipelines endpoint {host} is unreachable ({reason}). Check --host. For a cluster "
            "without ingress, run `kubectl port-forward -n kubeflow svc/ml-pipeline-ui 8080:80` and "
            "pass --host http://localhost:8080"
        ) from None

    # A gateway that redirects unauthenticated requests to a login page
    # returns 200 with HTML instead of the JSON health report.
    try:
        json.loads(body)
    except ValueError:
        raise KubeflowError(
            f"{url} returned {content_type or 'a non-JSON page'}, not the health report. A login page usually "
            f"means the request was not authenticated ({credentials.describe()} sent): {_CREDENTIALS_HINT}"
        ) from None


def submit_pipeline(
    host: str,
    package: Path,
    *,
    pipeline_name: str,
    experiment: str,
    run_name: str,
    arguments: dict[str, Any],
    credentials: Credentials,
    namespace: str | None = None,
) -> SubmittedRun:
    """Upload `package` (or reuse an identical upload), and start a run of it in `experiment`.

    New versions of an existing pipeline are named `NAME-DIGEST` after the
    package's SHA-256, and a version with that name is reused rather than
    uploaded again. A new pipeline's first version is the one the server
    creates with the upload, named after the pipeline.
    """
    import kfp
    import kfp_server_api
    import urllib3

    check_endpoint(host, credentials)
    client_options: dict[str, Any] = {"host": host, "existing_token": credentials.token, "cookies": credentials.cookie}
    if namespace:
        client_options["namespace"] = namespace

    try:
        with warnings.catch_warnings():
            # kfp 2.17 warns on every Client that it needs a v2 backend, and
            # the health check above already reached the v2beta1 API.
            warnings.filterwarnings("ignore", message="This client only works with Kubeflow Pipeline", category=FutureWarning)
            client = kfp.Client(**client_options)
        pipeline_id, version_id = _upload(client, package, pipeline_name)
        found = client.create_experiment(name=experiment, namespace=namespace)
        run = client.run_pipeline(
            experiment_id=found.experiment_id,
            job_name=run_name,
            pipeline_id=pipeline_id,
            version_id=version_id,
            params=arguments,
        )
    except kfp_server_api.ApiException as error:
        raise KubeflowError(_describe_api_error(host, error, credentials)) from None
    except urllib3.exceptions.HTTPError as error:
        raise KubeflowError(f"connection to Kubeflow Pipelines endpoint {host} failed during submission: {error}") from None

    run_url = f"{host.rstrip('/')}/#/runs/details/{run.run_id}"
    logger.info("Started run %s (%s) in experiment %s", run.run_id, run_name, experiment)
    return SubmittedRun(
        pipeline_id=pipeline_id,
        pipeline_version_id=version_id,
        experiment_id=found.experiment_id,
        run_id=run.run_id,
        run_url=run_url,
    )


def _upload(client: Any, package: Path, pipeline_name: str) -> tuple[str, str]:
    """Return (pipeline id, version id) of `package`, uploading only what the server lacks."""
    digest = hashlib.sha256(package.read_bytes()).hexdigest()[:12]
    version_name = f"{pipeline_name}-{digest}"
    description = f"Hybrid Dialogue pipeline, package sha256 {digest}"

    pipeline_id = client.get_pipeline_id(pipeline_name)
    if pipeline_id is None:
        pipeline = client.upload_pipeline(str(package), pipeline_name=pipeline_name, description=description)
        # The server stores the upload as the pipeline's first version.
        versions = client.list_pipeline_versions(pipeline.pipeline_id, page_size=1, sort_by="created_at desc")
        if not versions.pipeline_versions:
            raise KubeflowError(f"the server created pipeline {pipeline.pipeline_id} but lists no version of it")
        logger.info("Uploaded new pipeline %s (%s)", pipeline_name, pipeline.pipeline_id)
        return pipeline.pipeline_id, versions.pipeline_versions[0].pipeline_version_id

    same_name = json.dumps(
        {"predicates": [{"operation": "EQUALS", "key": "display_name", "stringValue": version_name}]}
    )
    existing = client.list_pipeline_versions(pipeline_id, filter=same_name)
    if existing.pipeline_versions:
        logger.info("Reusing pipeline version %s: the package is unchanged", version_name)
        return pipeline_id, existing.pipeline_versions[0].pipeline_version_id

    version = client.upload_pipeline_version(
        str(package), pipeline_version_name=version_name, pipeline_id=pipeline_id, description=description
    )
    logger.info("Uploaded pipeline version %s of %s", version_name, pipeline_name)
    return pipeline_id, version.pipeline_version_id


def _describe_api_error(host: str, error: Any, credentials: Credentials) -> str:
    status = getattr(error, "status", None)
    body = (getattr(error, "body", None) or "")
    if isinstance(body, bytes):
        body = body.decode("utf-8", "replace")
    detail = f"HTTP {status} {getattr(error, 'reason', '')}".strip()
    if status in (401, 403):
        return f"{host} rejected the request ({detail}, {credentials.describe()} sent): {_CREDENTIALS_HINT}"
    return f"Kubeflow Pipelines API call to {host} failed ({detail}): {str(body)[:500]}"
