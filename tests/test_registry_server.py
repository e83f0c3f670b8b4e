"""The registry over HTTP: a local `mlflow server` and `mlflow models serve` on 127.0.0.1.

Each server is a real subprocess with a SQLite backend and an artifact
directory under the test's temporary directory.
"""

from __future__ import annotations

import json
import os
import resource
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import mlflow
import pytest

from hybrid_dialogue import tracking
from hybrid_dialogue.generation import ResponseGenerator
from hybrid_dialogue.registry import CHALLENGER_ALIAS, CHAMPION_ALIAS, MODEL_NAME
from hybrid_dialogue.registry.config import RegisterConfig
from hybrid_dialogue.registry.register import register_model

from helpers_registry import (
    copy_bundle_as_processed,
    write_evaluate_metrics,
    write_tiny_bundle,
)

# Every test here starts at least one server and loads TensorFlow in it: over 20 s each.
pytestmark = [pytest.mark.server, pytest.mark.slow]

MLFLOW = str(Path(sys.executable).with_name("mlflow"))
MESSAGES = ["Where is my order 12345?", "I want to cancel my subscription"]


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def wait_until_up(url: str, process: subprocess.Popen, log: Path, timeout_s: float) -> None:
    """Poll `url` until it returns HTTP 200, and fail with the server's log if it exits or times out."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if process.poll() is not None:
            pytest.fail(f"server exited with status {process.returncode}:\n{log.read_text()[-3000:]}")
        try:
            with urllib.request.urlopen(url, timeout=2) as response:
                if response.status == 200:
                    return
        except (urllib.error.URLError, OSError):
            pass
        time.sleep(0.5)
    pytest.fail(f"server at {url} not up after {timeout_s} s:\n{log.read_text()[-3000:]}")


def stop(process: subprocess.Popen) -> None:
    if process.poll() is not None:
        return
    # Each server runs in its own session, so the signal reaches its workers too.
    os.killpg(process.pid, signal.SIGTERM)
    try:
        process.wait(timeout=20)
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, signal.SIGKILL)
        process.wait(timeout=20)


def start_tracking_server(root: Path, max_file_bytes: int | None = None) -> tuple[subprocess.Popen, str, Path]:
    """Start `mlflow server` on a free loopback port. `max_file_bytes`, when given, caps each file it writes."""
    root.mkdir(parents=True, exist_ok=True)
    port = free_port()
    log = root / "server.log"

    def limit_file_size() -> None:
        # A file write past the limit then fails with EFBIG, as on a full
        # disk, instead of killing the server with SIGXFSZ.
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
        resource.setrlimit(resource.RLIMIT_FSIZE, (max_file_bytes, max_file_bytes))

    command = [
        MLFLOW, "server", "--host", "127.0.0.1", "--port", str(port), "--workers", "1",
        "--backend-store-uri", f"sqlite:///{root / 'server.db'}",
        "--artifacts-destination", str(root / "artifacts"),
    ]
    # MLflow 3 otherwise starts background job workers that these tests never use.
    env = {**os.environ, "MLFLOW_SERVER_ENABLE_JOB_EXECUTION": "false"}
    with log.open("w") as log_file:
        process = subprocess.Popen(
            command, stdout=log_file, stderr=subprocess.STDOUT, cwd=root, env=env, start_new_session=True,
            preexec_fn=limit_file_size if max_file_bytes else None,
        )
    uri = f"http://127.0.0.1:{port}"
    wait_until_up(f"{uri}/health", process, log, timeout_s=120)
    return process, uri, log


@pytest.fixture(scope="module")
def server_workspace(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict]:
    """A tracking server with a first registered, promoted version of a tiny model."""
    root = tmp_path_factory.mktemp("server")
    process, uri, _ = start_tracking_server(root / "server")
    bundle = write_tiny_bundle(root / "bundle")
    model, processed = copy_bundle_as_processed(bundle, root)
    metrics = write_evaluate_metrics(root / "metrics" / "evaluate.json", bleu=20.0, retrieval_bleu=40.0)
    (root / "params.yaml").write_text("register: {}\n", encoding="utf-8")
    try:
        with pytest.MonkeyPatch.context() as patch:
            patch.chdir(root)
            patch.setenv("MLFLOW_TRACKING_URI", uri)
            patch.setenv("MLFLOW_EXPERIMENT_NAME", "server-test")
            result = register_model(model, processed, [metrics], RegisterConfig(), params_path="params.yaml")
            yield {"root": root, "uri": uri, "bundle": bundle, "result": result}
    finally:
        stop(process)


def test_register_over_http(server_workspace):
    result = server_workspace["result"]
    assert result.tracking_uri == server_workspace["uri"]
    assert result.aliases == [CHALLENGER_ALIAS, CHAMPION_ALIAS]
    client = mlflow.MlflowClient(tracking_uri=server_workspace["uri"])
    version = client.get_model_version_by_alias(MODEL_NAME, CHAMPION_ALIAS)
    assert str(version.version) == result.version
    assert version.tags["metric.bleu"] == "20.0"
    assert list((server_workspace["root"] / "server" / "artifacts").rglob("model.keras"))


def test_champion_loads_in_fresh_process_over_http(server_workspace):
    script = (
        "import json, mlflow, pandas as pd\n"
        f"model = mlflow.pyfunc.load_model('models:/{MODEL_NAME}@{CHAMPION_ALIAS}')\n"
        f"print(json.dumps(model.predict(pd.DataFrame({{'customer_message': {MESSAGES!r}}})).to_dict('records')))\n"
    )
    env = {**os.environ, "MLFLOW_TRACKING_URI": server_workspace["uri"]}
    completed = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, timeout=300, env=env,
        cwd=server_workspace["root"],
    )
    assert completed.returncode == 0, completed.stderr[-3000:]
    rows = json.loads(completed.stdout.strip().splitlines()[-1])
    expected = ResponseGenerator.from_directory(server_workspace["bundle"]).respond(MESSAGES)
    assert [row["response"] for row in rows] == [response.text for response in expected]


def post_json(url: str, payload: dict) -> tuple[int, dict]:
    request = urllib.request.Request(
        url, data=json.dumps(payload).encode(), headers={"Content-Type": "application/json"}, method="POST"
    )
    try:
        with urllib.request.urlopen(request, timeout=60) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as error:
        return error.code, json.loads(error.read())


def test_models_serve_invocations(server_workspace):
    port = free_port()
    log = server_workspace["root"] / "serve.log"
    # `mlflow models serve` starts `uvicorn` by name, so the venv's bin folder must be on PATH.
    path = f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}"
    env = {**os.environ, "MLFLOW_TRACKING_URI": server_workspace["uri"], "PATH": path}
    command = [
        MLFLOW, "models", "serve", "-m", f"models:/{MODEL_NAME}@{CHAMPION_ALIAS}",
        "--env-manager", "local", "--host", "127.0.0.1", "--port", str(port), "--workers", "1",
    ]
    with log.open("w") as log_file:
        process = subprocess.Popen(
            command, stdout=log_file, stderr=subprocess.STDOUT, env=env, cwd=server_workspace["root"],
            start_new_session=True,
        )
    try:
        base = f"http://127.0.0.1:{port}"
        wait_until_up(f"{base}/ping", process, log, timeout_s=240)

        records = [{"customer_message": message} for message in MESSAGES]
        status, body = post_json(f"{base}/invocations", {"dataframe_records": records})
        assert status == 200, body
        expected = ResponseGenerator.from_directory(server_workspace["bundle"]).respond(MESSAGES)
        assert [row["response"] for row in body["predictions"]] == [response.text for response in expected]
        assert [row["quality_score"] for row in body["predictions"]] == pytest.approx(
            [response.quality for response in expected], abs=1e-6
        )

        status, body = post_json(f"{base}/invocations", {"dataframe_records": [{"customer_message": "   "}]})
        assert status == 400
        assert "message 0 is empty" in body["message"]
    finally:
        stop(process)


# About the size of the tracking server's SQLite file after a few runs, in bytes.
DATABASE_BYTES = 1024 * 1024


def test_register_full_disk_keeps_no_version(tmp_path, monkeypatch):
    bundle = write_tiny_bundle(tmp_path / "bundle", preset="cpu")
    model, processed = copy_bundle_as_processed(bundle, tmp_path)

    # A per-file limit of half the model file: the model upload fails, while
    # the server's SQLite database (about 1 MB) still fits.
    model_bytes = model.stat().st_size
    assert model_bytes // 2 > 2 * DATABASE_BYTES, f"the cpu preset model ({model_bytes} bytes) is too small for this test"
    process, uri, log = start_tracking_server(tmp_path / "server", max_file_bytes=model_bytes // 2)
    try:
        (tmp_path / "params.yaml").write_text("register: {}\n", encoding="utf-8")
        monkeypatch.chdir(tmp_path)
        monkeypatch.setenv("MLFLOW_TRACKING_URI", uri)
        monkeypatch.setenv("MLFLOW_EXPERIMENT_NAME", "full-disk-test")
        # Retry the failing upload once instead of MLflow's default 7 times with exponential backoff.
        monkeypatch.setenv("MLFLOW_HTTP_REQUEST_MAX_RETRIES", "1")

        with pytest.raises(tracking.TrackingError, match=f"Tracking URI: {uri}") as raised:
            register_model(model, processed, [], RegisterConfig(), params_path="params.yaml")
        assert "No model version was registered" in str(raised.value)
        client = mlflow.MlflowClient(tracking_uri=uri)
        assert client.search_model_versions(f"name='{MODEL_NAME}'") == []
    finally:
        stop(process)
