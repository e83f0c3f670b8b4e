"""S3 storage: settings, `storage check`, the local endpoint scripts, DVC and MLflow over S3.

Server tests start a real moto S3 server (and an MLflow server) on a free
127.0.0.1 port and stop it afterwards. Nothing here leaves the machine.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
import uuid
from collections.abc import Iterator
from pathlib import Path

import boto3
import pytest
from click.testing import CliRunner

from hybrid_dialogue.cli.main import cli
from hybrid_dialogue.storage import (
    PROBE_PREFIX,
    StorageError,
    StorageSettings,
    check_bucket,
    validate_bucket_name,
)

REPO_ROOT = Path(__file__).resolve().parents[1]
VENV_BIN = Path(sys.executable).parent
DUMMY_KEY = "testing"  # moto without IAM enforcement accepts any key pair

# Policies of the two users on the IAM-enforcing moto server.
FULL_ACCESS = {"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "s3:*", "Resource": "*"}]}
READ_ONLY = {
    "Version": "2012-10-17",
    "Statement": [{"Effect": "Allow", "Action": ["s3:ListBucket", "s3:GetObject"], "Resource": "*"}],
}


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def port_open(port: int) -> bool:
    with socket.socket() as connection:
        connection.settimeout(0.5)
        return connection.connect_ex(("127.0.0.1", port)) == 0


def wait_for_port(process: subprocess.Popen, port: int, timeout_s: float) -> None:
    deadline = time.monotonic() + timeout_s
    while not port_open(port):
        if process.poll() is not None:
            raise RuntimeError(f"server exited with status {process.returncode} before listening on {port}")
        if time.monotonic() > deadline:
            raise TimeoutError(f"server did not listen on 127.0.0.1:{port} within {timeout_s} s")
        time.sleep(0.1)


def stop(process: subprocess.Popen) -> None:
    """Stop a server started in its own session, with every process it spawned."""
    if process.poll() is None:
        os.killpg(process.pid, signal.SIGTERM)
        try:
            process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait(timeout=10)


@contextlib.contextmanager
def moto_server(log_path: Path, extra_env: dict[str, str] | None = None) -> Iterator[str]:
    """Run `moto_server` on a free loopback port and yield its URL."""
    port = free_port()
    env = {**os.environ, **(extra_env or {})}
    with log_path.open("wb") as log:
        process = subprocess.Popen(
            [str(VENV_BIN / "moto_server"), "-H", "127.0.0.1", "-p", str(port)],
            stdout=log,
            stderr=subprocess.STDOUT,
            env=env,
            start_new_session=True,
        )
        try:
            wait_for_port(process, port, timeout_s=30)
            yield f"http://127.0.0.1:{port}"
        finally:
            stop(process)


def s3_client(endpoint: str, key_id: str = DUMMY_KEY, secret: str = DUMMY_KEY):
    return boto3.client(
        "s3",
        endpoint_url=endpoint,
        region_name="us-east-1",
        aws_access_key_id=key_id,
        aws_secret_access_key=secret,
    )


def unique_bucket() -> str:
    return f"hd-test-{uuid.uuid4().hex[:12]}"


def settings_for(endpoint: str, bucket: str, key_id: str = DUMMY_KEY, secret: str = DUMMY_KEY) -> StorageSettings:
    return StorageSettings(
        bucket=bucket,
        endpoint_url=endpoint,
        access_key_id=key_id,
        secret_access_key=secret,
        endpoint_source="MLFLOW_S3_ENDPOINT_URL",
    )


@pytest.fixture(scope="module")
def s3_endpoint(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A moto S3 server without IAM enforcement, shared by this module's tests."""
    log = tmp_path_factory.mktemp("moto") / "moto.log"
    with moto_server(log) as endpoint:
        yield endpoint


@pytest.fixture(scope="module")
def iam_s3(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, str]]:
    """A moto S3 server that checks keys and IAM policies, with a full-access and a read-only user.

    moto enforces IAM only after INITIAL_NO_AUTH_ACTION_COUNT requests: the
    six set-up requests below (user, key and policy, for two users) are the
    unchecked ones.
    """
    log = tmp_path_factory.mktemp("moto-iam") / "moto.log"
    with moto_server(log, {"INITIAL_NO_AUTH_ACTION_COUNT": "6"}) as endpoint:
        iam = boto3.client(
            "iam",
            endpoint_url=endpoint,
            region_name="us-east-1",
            aws_access_key_id=DUMMY_KEY,
            aws_secret_access_key=DUMMY_KEY,
        )
        keys = {}
        for user, policy in (("writer", FULL_ACCESS), ("reader", READ_ONLY)):
            iam.create_user(UserName=user)
            key = iam.create_access_key(UserName=user)["AccessKey"]
            iam.put_user_policy(UserName=user, PolicyName="s3", PolicyDocument=json.dumps(policy))
            keys[user] = key

        bucket = unique_bucket()
        s3_client(endpoint, keys["writer"]["AccessKeyId"], keys["writer"]["SecretAccessKey"]).create_bucket(
            Bucket=bucket
        )
        yield {
            "endpoint": endpoint,
            "bucket": bucket,
            "writer_id": keys["writer"]["AccessKeyId"],
            "writer_secret": keys["writer"]["SecretAccessKey"],
            "reader_id": keys["reader"]["AccessKeyId"],
            "reader_secret": keys["reader"]["SecretAccessKey"],
        }


# Settings and bucket names: no server needed.


def test_settings_read_environment() -> None:
    environ = {
        "HYBRID_DIALOGUE_BUCKET": "team-bucket",
        "MLFLOW_S3_ENDPOINT_URL": "http://minio:9000",
        "AWS_ENDPOINT_URL": "http://other:9000",
        "AWS_ACCESS_KEY_ID": "AKIAEXAMPLE1234",
        "AWS_SECRET_ACCESS_KEY": "very-secret-value",
        "AWS_DEFAULT_REGION": "eu-west-1",
    }

    settings = StorageSettings.from_env(environ)

    assert settings.bucket == "team-bucket"
    assert settings.endpoint_url == "http://minio:9000"
    assert settings.endpoint_source == "MLFLOW_S3_ENDPOINT_URL"
    assert settings.region == "eu-west-1"
    assert settings.access_key_id == "AKIAEXAMPLE1234"
    assert "very-secret-value" not in repr(settings)


def test_settings_fallbacks_and_overrides() -> None:
    environ = {"HYBRID_DIALOGUE_BUCKET": "team-bucket", "AWS_ENDPOINT_URL": "https://s3.example.test"}

    from_env = StorageSettings.from_env(environ)
    overridden = StorageSettings.from_env(environ, bucket="other-bucket", endpoint_url="http://127.0.0.1:9")
    aws = StorageSettings.from_env({"HYBRID_DIALOGUE_BUCKET": "team-bucket"})

    assert from_env.endpoint_url == "https://s3.example.test"
    assert from_env.endpoint_source == "AWS_ENDPOINT_URL"
    assert from_env.region == "us-east-1"
    assert from_env.access_key_id is None
    assert overridden.bucket == "other-bucket"
    assert overridden.endpoint_url == "http://127.0.0.1:9"
    assert aws.endpoint_url is None
    assert aws.endpoint_label == "AWS S3 (us-east-1)"


@pytest.mark.parametrize(
    ("environ", "message"),
    [
        ({}, "no bucket given: set HYBRID_DIALOGUE_BUCKET"),
        (
            {"HYBRID_DIALOGUE_BUCKET": "ok-bucket", "AWS_ACCESS_KEY_ID": "AKIA1"},
            "AWS_ACCESS_KEY_ID is set but AWS_SECRET_ACCESS_KEY is missing",
        ),
        (
            {"HYBRID_DIALOGUE_BUCKET": "ok-bucket", "AWS_SECRET_ACCESS_KEY": "x"},
            "AWS_SECRET_ACCESS_KEY is set but AWS_ACCESS_KEY_ID is missing",
        ),
        (
            {"HYBRID_DIALOGUE_BUCKET": "ok-bucket", "MLFLOW_S3_ENDPOINT_URL": "minio:9000"},
            "invalid S3 endpoint URL 'minio:9000' in MLFLOW_S3_ENDPOINT_URL",
        ),
    ],
)
def test_settings_reject_bad_environment(environ: dict[str, str], message: str) -> None:
    with pytest.raises(StorageError, match=message):
        StorageSettings.from_env(environ)


@pytest.mark.parametrize(
    ("name", "message"),
    [
        ("a", "use 3-63 lowercase"),
        ("ab", "use 3-63 lowercase"),
        ("x" * 64, "use 3-63 lowercase"),
        ("Hybrid-Dialogue", "use 3-63 lowercase"),
        ("hybrid_dialogue", "use 3-63 lowercase"),
        ("-hybrid", "use 3-63 lowercase"),
        ("hybrid-", "use 3-63 lowercase"),
        ("hybrid..dialogue", "dots may not be adjacent"),
        ("hybrid.-dialogue", "dots may not be adjacent"),
        ("192.168.1.10", "may not look like an IP address"),
        ("xn--hybrid", "prefix or suffix that S3 reserves"),
        ("hybrid-s3alias", "prefix or suffix that S3 reserves"),
        ("s3://hybrid/dvc", "give the bare name"),
    ],
)
def test_bucket_name_rejected(name: str, message: str) -> None:
    with pytest.raises(StorageError, match=message):
        validate_bucket_name(name)


@pytest.mark.parametrize("name", ["abc", "hybrid-dialogue", "team.ml-artifacts-01", "x" * 63])
def test_bucket_name_accepted(name: str) -> None:
    validate_bucket_name(name)


# `storage check` against a real moto server.


@pytest.mark.server
def test_check_existing_bucket(s3_endpoint: str) -> None:
    bucket = unique_bucket()
    client = s3_client(s3_endpoint)
    client.create_bucket(Bucket=bucket)

    report = check_bucket(settings_for(s3_endpoint, bucket))

    assert report.bucket == bucket
    assert report.endpoint == s3_endpoint
    assert report.created is False
    assert report.probe_key.startswith(PROBE_PREFIX)
    # The probe object is deleted again.
    assert client.list_objects_v2(Bucket=bucket).get("KeyCount") == 0


@pytest.mark.server
def test_check_missing_bucket_then_create(s3_endpoint: str) -> None:
    bucket = unique_bucket()
    settings = settings_for(s3_endpoint, bucket)

    with pytest.raises(StorageError, match=rf"bucket '{bucket}' not found on {s3_endpoint}.*--create"):
        check_bucket(settings)
    report = check_bucket(settings, create=True)
    again = check_bucket(settings, create=True)

    assert report.created is True
    assert again.created is False
    names = [entry["Name"] for entry in s3_client(s3_endpoint).list_buckets()["Buckets"]]
    assert bucket in names


@pytest.mark.server
def test_check_unreachable_endpoint() -> None:
    port = free_port()  # nothing listens there
    endpoint = f"http://127.0.0.1:{port}"
    settings = StorageSettings(
        bucket="hybrid-dialogue",
        endpoint_url=endpoint,
        access_key_id=DUMMY_KEY,
        secret_access_key=DUMMY_KEY,
        endpoint_source="MLFLOW_S3_ENDPOINT_URL",
        connect_timeout_s=1.0,
    )

    started = time.monotonic()
    with pytest.raises(StorageError) as raised:
        check_bucket(settings)
    elapsed = time.monotonic() - started

    assert f"cannot connect to S3 endpoint {endpoint}" in str(raised.value)
    assert "make storage-up" in str(raised.value)
    assert "MLFLOW_S3_ENDPOINT_URL" in str(raised.value)
    assert elapsed < 15


@pytest.mark.server
def test_check_valid_iam_credentials(iam_s3: dict[str, str]) -> None:
    settings = settings_for(iam_s3["endpoint"], iam_s3["bucket"], iam_s3["writer_id"], iam_s3["writer_secret"])

    report = check_bucket(settings)

    assert report.created is False


@pytest.mark.server
def test_check_unknown_access_key(iam_s3: dict[str, str]) -> None:
    settings = settings_for(iam_s3["endpoint"], iam_s3["bucket"], "AKIAUNKNOWNKEY0WXYZ", "whatever")

    with pytest.raises(StorageError, match="access key ending in 'WXYZ' is not valid.*AWS_ACCESS_KEY_ID"):
        check_bucket(settings)


@pytest.mark.server
def test_check_wrong_secret_key(iam_s3: dict[str, str]) -> None:
    settings = settings_for(iam_s3["endpoint"], iam_s3["bucket"], iam_s3["writer_id"], "wrong-secret")

    with pytest.raises(StorageError) as raised:
        check_bucket(settings)

    assert "AWS_SECRET_ACCESS_KEY does not match" in str(raised.value)
    assert "wrong-secret" not in str(raised.value)


@pytest.mark.server
def test_check_read_only_credentials(iam_s3: dict[str, str]) -> None:
    settings = settings_for(iam_s3["endpoint"], iam_s3["bucket"], iam_s3["reader_id"], iam_s3["reader_secret"])

    with pytest.raises(StorageError, match=r"access denied \(HTTP 403\).*to write.*s3:PutObject"):
        check_bucket(settings)


@pytest.mark.server
def test_cli_check_create_and_errors(s3_endpoint: str, monkeypatch: pytest.MonkeyPatch) -> None:
    bucket = unique_bucket()
    monkeypatch.setenv("MLFLOW_S3_ENDPOINT_URL", s3_endpoint)
    monkeypatch.setenv("HYBRID_DIALOGUE_BUCKET", bucket)
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", DUMMY_KEY)
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", DUMMY_KEY)
    runner = CliRunner()

    missing = runner.invoke(cli, ["storage", "check"])
    created = runner.invoke(cli, ["storage", "check", "--create"])
    present = runner.invoke(cli, ["storage", "check"])
    invalid = runner.invoke(cli, ["storage", "check", "--bucket", "a"])

    assert missing.exit_code == 1
    assert f"bucket '{bucket}' not found" in missing.output
    assert "Traceback" not in missing.output
    assert created.exit_code == 0, created.output
    assert "created and verified" in created.output
    assert present.exit_code == 0, present.output
    assert "exists and is writable" in present.output
    assert invalid.exit_code == 1
    assert "invalid bucket name 'a'" in invalid.output


# The scripts behind `make storage-up`, `make storage-down` and `make dvc-remote`.


def script_env(**overrides: str) -> dict[str, str]:
    env = {
        **os.environ,
        "PATH": f"{VENV_BIN}{os.pathsep}{os.environ.get('PATH', '')}",
        "AWS_ACCESS_KEY_ID": DUMMY_KEY,
        "AWS_SECRET_ACCESS_KEY": DUMMY_KEY,
        "DVC_NO_ANALYTICS": "1",
    }
    env.pop("AWS_ENDPOINT_URL", None)
    env.update(overrides)
    return env


def run_script(script: str, env: dict[str, str], cwd: Path = REPO_ROOT) -> subprocess.CompletedProcess:
    return subprocess.run(
        ["bash", str(REPO_ROOT / script)], cwd=cwd, env=env, capture_output=True, text=True, timeout=120
    )


@pytest.mark.server
def test_storage_up_and_down_scripts(tmp_path: Path) -> None:
    port = free_port()
    bucket = unique_bucket()
    env = script_env(S3_PORT=str(port), S3_STATE_DIR=str(tmp_path / "s3"), HYBRID_DIALOGUE_BUCKET=bucket)
    pid_file = tmp_path / "s3" / "moto.pid"

    try:
        up = run_script("infra/scripts/storage-up.sh", env)
        assert up.returncode == 0, up.stdout + up.stderr
        pid = int(pid_file.read_text())
        assert f"export MLFLOW_S3_ENDPOINT_URL=http://127.0.0.1:{port}" in up.stdout
        assert f"export HYBRID_DIALOGUE_BUCKET={bucket}" in up.stdout
        names = [entry["Name"] for entry in s3_client(f"http://127.0.0.1:{port}").list_buckets()["Buckets"]]
        assert bucket in names

        again = run_script("infra/scripts/storage-up.sh", env)
        assert again.returncode == 0, again.stdout + again.stderr
        assert f"already running (pid {pid})" in again.stdout
    finally:
        down = run_script("infra/scripts/storage-down.sh", env)

    assert down.returncode == 0, down.stdout + down.stderr
    assert f"Stopped moto server (pid {pid})" in down.stdout
    assert not pid_file.exists()
    assert not port_open(port)
    twice = run_script("infra/scripts/storage-down.sh", env)
    assert "nothing to stop" in twice.stdout


@pytest.mark.server
def test_storage_up_rejects_busy_port(tmp_path: Path) -> None:
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen()
        port = listener.getsockname()[1]
        env = script_env(S3_PORT=str(port), S3_STATE_DIR=str(tmp_path / "s3"))

        result = run_script("infra/scripts/storage-up.sh", env)

    assert result.returncode == 1
    assert f"127.0.0.1:{port} is already in use" in result.stderr
    assert not (tmp_path / "s3" / "moto.pid").exists()


@pytest.mark.server
@pytest.mark.slow
def test_dvc_push_pull_through_s3(s3_endpoint: str, tmp_path: Path) -> None:
    bucket = unique_bucket()
    s3_client(s3_endpoint).create_bucket(Bucket=bucket)
    repo = tmp_path / "repo"
    corpus = repo / "data" / "raw" / "dialogues.jsonl"
    corpus.parent.mkdir(parents=True)
    content = "".join(json.dumps({"id": i, "text": f"message {i}"}) + "\n" for i in range(50))
    corpus.write_text(content, encoding="utf-8")
    env = script_env(
        HYBRID_DIALOGUE_BUCKET=bucket,
        MLFLOW_S3_ENDPOINT_URL=s3_endpoint,
        DVC=str(VENV_BIN / "dvc"),
        DVC_SITE_CACHE_DIR=str(tmp_path / "dvc-site-cache"),
    )

    def dvc(*args: str) -> subprocess.CompletedProcess:
        result = subprocess.run(
            [str(VENV_BIN / "dvc"), *args], cwd=repo, env=env, capture_output=True, text=True, timeout=120
        )
        assert result.returncode == 0, f"dvc {' '.join(args)} failed:\n{result.stdout}{result.stderr}"
        return result

    subprocess.run(["git", "init", "-q"], cwd=repo, check=True)
    dvc("init", "-q")
    dvc("add", "-q", "data/raw")
    remote = run_script("infra/scripts/dvc-remote.sh", env, cwd=repo)
    assert remote.returncode == 0, remote.stdout + remote.stderr

    dvc("push")
    stored = [entry["Key"] for entry in s3_client(s3_endpoint).list_objects_v2(Bucket=bucket)["Contents"]]
    (repo / "data" / "raw").rename(tmp_path / "moved-away")
    # Only the remote can restore the data once the local cache is gone.
    shutil.rmtree(repo / ".dvc" / "cache")
    dvc("pull")

    assert stored, "dvc push stored nothing in the bucket"
    assert all(key.startswith("dvc/") for key in stored)
    assert corpus.read_text(encoding="utf-8") == content
    assert f"url = s3://{bucket}/dvc" in (repo / ".dvc" / "config").read_text()
    assert f"endpointurl = {s3_endpoint}" in (repo / ".dvc" / "config.local").read_text()
    for config in (repo / ".dvc" / "config", repo / ".dvc" / "config.local"):
        assert DUMMY_KEY not in config.read_text(), f"credentials written to {config}"


# The MLflow tracking server of `make mlflow-server`, over real HTTP.

MLFLOW_CLIENT = """
import json, sys
import boto3, mlflow, numpy as np
from sklearn.linear_model import LinearRegression

endpoint, bucket = sys.argv[1], sys.argv[2]
mlflow.set_experiment("storage-test")
features = np.arange(10, dtype=float).reshape(-1, 1)
model = LinearRegression().fit(features, 3.0 * features[:, 0] + 1.0)
with mlflow.start_run():
    # Explicit requirements skip MLflow's requirement inference, about 25 s here.
    info = mlflow.sklearn.log_model(
        model, name="model", registered_model_name="storage-test-model", pip_requirements=["scikit-learn"]
    )
loaded = mlflow.pyfunc.load_model("models:/storage-test-model/1")
s3 = boto3.client("s3", endpoint_url=endpoint, region_name="us-east-1")
keys = [entry["Key"] for entry in s3.list_objects_v2(Bucket=bucket, Prefix="mlflow/")["Contents"]]
print(json.dumps({
    "artifact_uri": info.artifact_path,
    "prediction": float(loaded.predict(np.array([[20.0]]))[0]),
    "keys": keys,
}))
"""


def wait_for_http(url: str, process: subprocess.Popen, timeout_s: float) -> None:
    deadline = time.monotonic() + timeout_s
    while True:
        try:
            with urllib.request.urlopen(url, timeout=2):
                return
        except (urllib.error.URLError, OSError):
            if process.poll() is not None:
                raise RuntimeError(f"MLflow server exited with status {process.returncode}") from None
            if time.monotonic() > deadline:
                raise TimeoutError(f"{url} did not answer within {timeout_s} s") from None
            time.sleep(0.5)


@pytest.mark.server
@pytest.mark.slow
def test_mlflow_server_stores_model_on_s3(s3_endpoint: str, tmp_path: Path) -> None:
    bucket = unique_bucket()
    s3_client(s3_endpoint).create_bucket(Bucket=bucket)
    port = free_port()
    env = script_env(
        MLFLOW_PORT=str(port),
        MLFLOW_BACKEND_STORE_URI=f"sqlite:///{tmp_path / 'server.db'}",
        MLFLOW_S3_ENDPOINT_URL=s3_endpoint,
        HYBRID_DIALOGUE_BUCKET=bucket,
        MLFLOW=str(VENV_BIN / "mlflow"),
        HYBRID_DIALOGUE_CLI=str(VENV_BIN / "hybrid-dialogue"),
    )
    log_path = tmp_path / "mlflow-server.log"

    with log_path.open("wb") as log:
        server = subprocess.Popen(
            ["bash", str(REPO_ROOT / "mlflow" / "server.sh")],
            cwd=tmp_path,
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    try:
        wait_for_http(f"http://127.0.0.1:{port}/health", server, timeout_s=180)
        # The client gets no endpoint: artifacts must travel through the server.
        client_env = {
            key: value for key, value in env.items() if key not in ("MLFLOW_S3_ENDPOINT_URL", "AWS_ENDPOINT_URL")
        }
        client_env["MLFLOW_TRACKING_URI"] = f"http://127.0.0.1:{port}"
        result = subprocess.run(
            [sys.executable, "-c", MLFLOW_CLIENT, s3_endpoint, bucket],
            cwd=tmp_path,
            env=client_env,
            capture_output=True,
            text=True,
            timeout=300,
        )
    finally:
        stop(server)

    assert result.returncode == 0, result.stderr[-3000:] + "\n" + log_path.read_text()[-3000:]
    outcome = json.loads(result.stdout.strip().splitlines()[-1])
    assert outcome["artifact_uri"].startswith("mlflow-artifacts:/")
    assert outcome["prediction"] == pytest.approx(61.0)
    assert any(key.endswith("/MLmodel") for key in outcome["keys"])
    assert any(key.endswith("/model.skops") or key.endswith("/model.pkl") for key in outcome["keys"])


# `mlflow/` contains scripts and local stores, and must never shadow the installed package.


def test_mlflow_folder_is_not_a_package() -> None:
    folder = REPO_ROOT / "mlflow"

    assert not (folder / "__init__.py").exists()
    assert sorted(path.name for path in folder.glob("*.py")) == []


def test_import_mlflow_from_repo_root() -> None:
    # `python -c` puts the working directory first on sys.path, as a user's
    # shell does; find_spec resolves the name exactly as `import` would.
    code = (
        "import importlib.util, json; spec = importlib.util.find_spec('mlflow'); "
        "print(json.dumps([spec.origin, list(spec.submodule_search_locations or [])]))"
    )
    result = subprocess.run([sys.executable, "-c", code], cwd=REPO_ROOT, capture_output=True, text=True, timeout=60)

    assert result.returncode == 0, result.stderr
    origin, locations = json.loads(result.stdout.strip().splitlines()[-1])
    assert origin is not None, "mlflow resolved to a namespace package"
    assert Path(origin).parent.parent.name == "site-packages"
    assert str(REPO_ROOT / "mlflow") not in locations
