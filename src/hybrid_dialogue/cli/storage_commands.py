"""`hybrid-dialogue storage ...`: check the S3-compatible bucket for DVC data and MLflow artifacts."""

from __future__ import annotations

import click

from hybrid_dialogue.cli.main import PipelineError, cli


@cli.group()
def storage() -> None:
    """Check the S3-compatible bucket that contains DVC data and MLflow artifacts.

    The endpoint, bucket and credentials come from the environment:
    MLFLOW_S3_ENDPOINT_URL (or AWS_ENDPOINT_URL; unset means AWS S3),
    HYBRID_DIALOGUE_BUCKET, AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY and
    AWS_DEFAULT_REGION.
    """


@storage.command("check")
@click.option("--create", is_flag=True, help="Create the bucket when it does not exist.")
@click.option("--bucket", metavar="NAME", default=None, help="Bucket name (default: $HYBRID_DIALOGUE_BUCKET).")
@click.option(
    "--endpoint-url",
    metavar="URL",
    default=None,
    help="S3 endpoint (default: $MLFLOW_S3_ENDPOINT_URL, then $AWS_ENDPOINT_URL; neither means AWS S3).",
)
def check(create: bool, bucket: str | None, endpoint_url: str | None) -> None:
    """Verify that the bucket exists and is writable (puts and deletes one probe object)."""
    # boto3 is imported here, not at module level, so `--help` stays fast.
    from hybrid_dialogue.storage import StorageError, StorageSettings, check_bucket

    try:
        settings = StorageSettings.from_env(bucket=bucket, endpoint_url=endpoint_url)
        report = check_bucket(settings, create=create)
    except StorageError as error:
        raise PipelineError(str(error)) from error
    click.echo(report.summary())
