"""S3-compatible storage for DVC data and MLflow artifacts.

The endpoint, bucket and credentials come from the environment, so the same
code talks to AWS S3, MinIO, Ceph or the local moto server of
`make storage-up`. `check_bucket` verifies that the bucket exists and is
writable, and creates it on request. Every failure raises `StorageError` with a
message that names the endpoint, the bucket and the fix. Secrets never appear
in messages, logs or `repr`.
"""

from __future__ import annotations

import dataclasses
import ipaddress
import logging
import os
import re
import time
import uuid
from collections.abc import Mapping
from typing import Any
from urllib.parse import urlparse

import boto3
import botocore.exceptions
from botocore.config import Config

logger = logging.getLogger(__name__)

BUCKET_VARIABLE = "HYBRID_DIALOGUE_BUCKET"
# MLflow reads MLFLOW_S3_ENDPOINT_URL and boto3 reads AWS_ENDPOINT_URL. The
# first one set wins, so the check uses the same endpoint as MLflow.
ENDPOINT_VARIABLES = ("MLFLOW_S3_ENDPOINT_URL", "AWS_ENDPOINT_URL")
REGION_VARIABLES = ("AWS_DEFAULT_REGION", "AWS_REGION")
DEFAULT_REGION = "us-east-1"

# The write probe is one small object under this prefix, deleted at once.
PROBE_PREFIX = ".hybrid-dialogue-probe/"

# S3 bucket naming rules (general purpose buckets): 3-63 characters of
# lowercase letters, digits, dots and hyphens, starting and ending with a
# letter or digit.
_BUCKET_PATTERN = re.compile(r"^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$")
_RESERVED_PREFIXES = ("xn--", "sthree-", "amzn-s3-demo-")
_RESERVED_SUFFIXES = ("-s3alias", "--ol-s3", "--x-s3", ".mrap")

_CREDENTIAL_CODES = {"InvalidAccessKeyId", "SignatureDoesNotMatch", "InvalidToken", "ExpiredToken"}
_MISSING_BUCKET_CODES = {"NoSuchBucket", "404", "NotFound"}
_DENIED_CODES = {"AccessDenied", "403", "Forbidden", "AllAccessDisabled"}


class StorageError(RuntimeError):
    """Unusable S3 endpoint or bucket, with a message that gives the cause and the fix."""


@dataclasses.dataclass(frozen=True)
class StorageSettings:
    """Location of the bucket, and the client settings that reach it.

    `endpoint_url` None means AWS S3 itself. Credentials None let boto3 use its
    default chain (profile, instance or pod role). `endpoint_source` names the
    environment variable the endpoint came from, for error messages.
    """

    bucket: str
    endpoint_url: str | None = None
    region: str = DEFAULT_REGION
    access_key_id: str | None = None
    secret_access_key: str | None = dataclasses.field(default=None, repr=False)
    session_token: str | None = dataclasses.field(default=None, repr=False)
    endpoint_source: str = "--endpoint-url"
    connect_timeout_s: float = 5.0
    read_timeout_s: float = 30.0
    # Total tries per request, the first included: an unreachable endpoint
    # fails after about max_attempts * connect_timeout_s.
    max_attempts: int = 2

    @classmethod
    def from_env(
        cls,
        environ: Mapping[str, str] | None = None,
        *,
        bucket: str | None = None,
        endpoint_url: str | None = None,
    ) -> StorageSettings:
        """Read the settings from `environ` (default `os.environ`); arguments override it."""
        environ = os.environ if environ is None else environ

        bucket = bucket or environ.get(BUCKET_VARIABLE, "")
        if not bucket:
            raise StorageError(
                f"no bucket given: set {BUCKET_VARIABLE}=NAME or pass --bucket NAME "
                "(make storage-up creates the bucket 'hybrid-dialogue' on the local endpoint)."
            )
        validate_bucket_name(bucket)

        endpoint_source = "--endpoint-url"
        if not endpoint_url:
            endpoint_source, endpoint_url = _first_set(environ, ENDPOINT_VARIABLES)
        if endpoint_url:
            _validate_endpoint(endpoint_url, endpoint_source)

        access_key_id = environ.get("AWS_ACCESS_KEY_ID") or None
        secret_access_key = environ.get("AWS_SECRET_ACCESS_KEY") or None
        if bool(access_key_id) != bool(secret_access_key):
            present, missing = (
                ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY")
                if access_key_id
                else ("AWS_SECRET_ACCESS_KEY", "AWS_ACCESS_KEY_ID")
            )
            raise StorageError(f"{present} is set but {missing} is missing: set both, or neither.")

        _, region = _first_set(environ, REGION_VARIABLES)
        return cls(
            bucket=bucket,
            endpoint_url=endpoint_url or None,
            region=region or DEFAULT_REGION,
            access_key_id=access_key_id,
            secret_access_key=secret_access_key,
            session_token=environ.get("AWS_SESSION_TOKEN") or None,
            endpoint_source=endpoint_source,
        )

    @property
    def endpoint_label(self) -> str:
        """The endpoint as messages show it."""
        return self.endpoint_url or f"AWS S3 ({self.region})"

    def client(self) -> Any:
        """Build a boto3 S3 client with short timeouts and few retries."""
        config = Config(
            connect_timeout=self.connect_timeout_s,
            read_timeout=self.read_timeout_s,
            retries={"max_attempts": self.max_attempts, "mode": "standard"},
            # MinIO, Ceph and moto serve buckets as paths of one host name,
            # while virtual-host style would need a DNS name per bucket.
            s3={"addressing_style": "path"} if self.endpoint_url else None,
        )
        return boto3.client(
            "s3",
            endpoint_url=self.endpoint_url,
            region_name=self.region,
            aws_access_key_id=self.access_key_id,
            aws_secret_access_key=self.secret_access_key,
            aws_session_token=self.session_token,
            config=config,
        )


@dataclasses.dataclass(frozen=True)
class StorageReport:
    """Outcome of a successful `check_bucket`."""

    bucket: str
    endpoint: str
    region: str
    created: bool
    probe_key: str
    elapsed_s: float

    def summary(self) -> str:
        action = "created and verified" if self.created else "exists and is writable"
        return (
            f"Bucket '{self.bucket}' on {self.endpoint} {action} "
            f"(region {self.region}, {self.elapsed_s:.2f} s)."
        )


def validate_bucket_name(name: str) -> None:
    """Raise `StorageError` when `name` breaks the S3 bucket naming rules."""
    if name.startswith("s3://"):
        raise StorageError(
            f"invalid bucket name {name!r}: give the bare name (for example 'hybrid-dialogue'), "
            "without s3:// or a path."
        )

    problem = None
    if not _BUCKET_PATTERN.match(name):
        problem = (
            "use 3-63 lowercase letters, digits, dots or hyphens, "
            "starting and ending with a letter or digit"
        )
    elif ".." in name or ".-" in name or "-." in name:
        problem = "dots may not be adjacent to each other or to a hyphen"
    elif _is_ip_address(name):
        problem = "a bucket name may not look like an IP address"
    elif name.startswith(_RESERVED_PREFIXES) or name.endswith(_RESERVED_SUFFIXES):
        problem = "the name uses a prefix or suffix that S3 reserves"

    if problem:
        raise StorageError(f"invalid bucket name {name!r}: {problem}.")


def check_bucket(settings: StorageSettings, create: bool = False) -> StorageReport:
    """Verify that the bucket exists and is writable, creating it when `create` is set.

    Writability is tested by putting a small probe object under
    `PROBE_PREFIX` and deleting it again.
    """
    started = time.perf_counter()
    client = settings.client()

    created = False
    if not _bucket_exists(client, settings):
        if not create:
            raise StorageError(
                f"bucket '{settings.bucket}' not found on {settings.endpoint_label}. "
                "Create it with: hybrid-dialogue storage check --create "
                f"(or fix {BUCKET_VARIABLE})."
            )
        _create_bucket(client, settings)
        created = True

    probe_key = _write_probe(client, settings)
    elapsed = time.perf_counter() - started
    logger.debug("Bucket %s on %s is writable (%.2f s)", settings.bucket, settings.endpoint_label, elapsed)
    return StorageReport(
        bucket=settings.bucket,
        endpoint=settings.endpoint_label,
        region=settings.region,
        created=created,
        probe_key=probe_key,
        elapsed_s=elapsed,
    )


def _bucket_exists(client: Any, settings: StorageSettings) -> bool:
    # ListObjectsV2 rather than HeadBucket: a HEAD response has no body, so a
    # 403 there cannot tell a wrong key from a missing permission.
    try:
        client.list_objects_v2(Bucket=settings.bucket, MaxKeys=1)
    except botocore.exceptions.ClientError as error:
        if _error_code(error) in _MISSING_BUCKET_CODES:
            return False
        raise _explain(error, settings, "list") from error
    except botocore.exceptions.BotoCoreError as error:
        raise _explain_transport(error, settings) from error
    return True


def _create_bucket(client: Any, settings: StorageSettings) -> None:
    arguments: dict[str, Any] = {"Bucket": settings.bucket}
    # us-east-1 is the one region where S3 rejects an explicit location.
    if settings.region != "us-east-1":
        arguments["CreateBucketConfiguration"] = {"LocationConstraint": settings.region}

    try:
        client.create_bucket(**arguments)
    except botocore.exceptions.ClientError as error:
        code = _error_code(error)
        if code == "BucketAlreadyOwnedByYou":
            logger.info("Bucket %s was created concurrently; using it", settings.bucket)
            return
        if code == "BucketAlreadyExists":
            raise StorageError(
                f"bucket name '{settings.bucket}' is taken by another account on "
                f"{settings.endpoint_label}: bucket names are global, so choose another "
                f"{BUCKET_VARIABLE}."
            ) from error
        raise _explain(error, settings, "create") from error
    except botocore.exceptions.BotoCoreError as error:
        raise _explain_transport(error, settings) from error
    logger.info("Created bucket %s on %s", settings.bucket, settings.endpoint_label)


def _write_probe(client: Any, settings: StorageSettings) -> str:
    key = f"{PROBE_PREFIX}{uuid.uuid4().hex}"
    try:
        client.put_object(Bucket=settings.bucket, Key=key, Body=b"hybrid-dialogue storage check\n")
    except botocore.exceptions.ClientError as error:
        raise _explain(error, settings, "write") from error
    except botocore.exceptions.BotoCoreError as error:
        raise _explain_transport(error, settings) from error

    try:
        client.delete_object(Bucket=settings.bucket, Key=key)
    except botocore.exceptions.ClientError as error:
        raise StorageError(
            f"bucket '{settings.bucket}' accepted the probe object but deleting it failed "
            f"({_error_code(error)}): grant s3:DeleteObject (DVC gc and MLflow need it) and "
            f"remove s3://{settings.bucket}/{key} by hand."
        ) from error
    except botocore.exceptions.BotoCoreError as error:
        raise _explain_transport(error, settings) from error
    return key


def _explain(error: botocore.exceptions.ClientError, settings: StorageSettings, action: str) -> StorageError:
    """Turn an S3 error response into a message that names the cause and the fix."""
    code = _error_code(error)
    where = f"{settings.endpoint_label}, bucket '{settings.bucket}'"

    if code == "InvalidAccessKeyId":
        return StorageError(
            f"the access key {_key_hint(settings)} is not valid on {where}: "
            "check AWS_ACCESS_KEY_ID."
        )
    if code == "SignatureDoesNotMatch":
        return StorageError(
            f"request signature rejected by {where}: AWS_SECRET_ACCESS_KEY does not match "
            f"the access key {_key_hint(settings)}."
        )
    if code in _CREDENTIAL_CODES:
        return StorageError(f"credentials rejected by {where} ({code}): renew AWS_SESSION_TOKEN or unset it.")
    if code in _DENIED_CODES:
        permission = {"list": "s3:ListBucket", "create": "s3:CreateBucket", "write": "s3:PutObject"}[action]
        return StorageError(
            f"access denied (HTTP 403) on {where} when trying to {action}: the credentials are wrong "
            f"or lack {permission}. Check AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY and the bucket policy."
        )
    if code == "InvalidBucketName":
        return StorageError(f"{settings.endpoint_label} rejected the bucket name '{settings.bucket}' as invalid.")

    message = error.response.get("Error", {}).get("Message", "")
    return StorageError(f"S3 request to {action} failed on {where}: {code} {message}".rstrip())


def _explain_transport(error: botocore.exceptions.BotoCoreError, settings: StorageSettings) -> StorageError:
    """Turn a connection, timeout or credential-lookup failure into a `StorageError`."""
    if isinstance(error, botocore.exceptions.NoCredentialsError):
        return StorageError(
            f"no S3 credentials found for {settings.endpoint_label}: "
            "set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY."
        )
    if isinstance(error, (botocore.exceptions.ConnectTimeoutError, botocore.exceptions.ReadTimeoutError)):
        return StorageError(
            f"S3 endpoint {settings.endpoint_label} timed out after {settings.max_attempts} tries: "
            f"check {settings.endpoint_source} and the network."
        )
    if isinstance(error, botocore.exceptions.EndpointConnectionError):
        hint = "start it with 'make storage-up' or fix" if _is_loopback(settings.endpoint_url) else "check"
        return StorageError(
            f"cannot connect to S3 endpoint {settings.endpoint_label}: {hint} {settings.endpoint_source}."
        )
    return StorageError(f"S3 request to {settings.endpoint_label} failed: {error}")


def _error_code(error: botocore.exceptions.ClientError) -> str:
    return str(error.response.get("Error", {}).get("Code", "Unknown"))


def _key_hint(settings: StorageSettings) -> str:
    # The key ID is an identifier, not a secret. Its last four characters
    # tell which key was used without printing it whole.
    if not settings.access_key_id:
        return "from the default credential chain"
    return f"ending in '{settings.access_key_id[-4:]}'"


def _first_set(environ: Mapping[str, str], names: tuple[str, ...]) -> tuple[str, str]:
    for name in names:
        value = environ.get(name, "")
        if value:
            return name, value
    return names[0], ""


def _validate_endpoint(url: str, source: str) -> None:
    parsed = urlparse(url)
    if parsed.scheme not in ("http", "https") or not parsed.hostname:
        raise StorageError(
            f"invalid S3 endpoint URL {url!r} in {source}: expected http://HOST:PORT or https://HOST."
        )


def _is_ip_address(name: str) -> bool:
    try:
        ipaddress.ip_address(name)
    except ValueError:
        return False
    return True


def _is_loopback(url: str | None) -> bool:
    host = urlparse(url).hostname if url else None
    if host == "localhost":
        return True
    try:
        return host is not None and ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False
