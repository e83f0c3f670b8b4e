"""`hybrid-dialogue kfp submit` against a stand-in Kubeflow Pipelines API server on 127.0.0.1.

The stand-in serves the v2beta1 REST calls that `kfp.Client` makes (health,
pipelines, upload, versions, experiments, runs) with the JSON shapes of the
Kubeflow Pipelines API, and records every request. It is not a Kubeflow
cluster: these tests check what the command sends, not what a cluster does.
"""

from __future__ import annotations

import itertools
import json
import socket
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import pytest
from click.testing import CliRunner

from hybrid_dialogue.cli.main import cli

API = "/apis/v2beta1"
CREATED_AT = "2026-12-01T10:00:00Z"


@dataclass
class RecordedRequest:
    method: str
    path: str
    query: dict[str, list[str]]
    headers: dict[str, str]
    body: bytes

    def json(self) -> dict:
        return json.loads(self.body)


@dataclass
class StandInState:
    """What the stand-in stores, and the failures a test can switch on."""

    required_token: str | None = None
    healthz_html: bool = False
    fail_runs_with: int | None = None
    requests: list[RecordedRequest] = field(default_factory=list)
    pipelines: dict[str, dict] = field(default_factory=dict)
    versions: dict[str, list[dict]] = field(default_factory=dict)
    experiments: dict[str, dict] = field(default_factory=dict)
    runs: list[dict] = field(default_factory=list)
    ids: Iterator[int] = field(default_factory=lambda: itertools.count(1))

    def calls(self, method: str, path: str) -> list[RecordedRequest]:
        return [request for request in self.requests if request.method == method and request.path == path]


def _display_name_filter(query: dict[str, list[str]]) -> str | None:
    """Return the value of an `EQUALS display_name` filter, as `kfp.Client` writes it."""
    if "filter" not in query:
        return None
    for predicate in json.loads(query["filter"][0]).get("predicates", []):
        if predicate.get("key") == "display_name":
            return predicate.get("string_value", predicate.get("stringValue"))
    return None


class StandInHandler(BaseHTTPRequestHandler):
    state: StandInState

    def log_message(self, format: str, *args: object) -> None:  # noqa: A002 (signature of the base class)
        pass  # keep test output quiet

    def do_GET(self) -> None:  # noqa: N802 (http.server naming)
        self._handle("GET")

    def do_POST(self) -> None:  # noqa: N802
        self._handle("POST")

    def _handle(self, method: str) -> None:
        parts = urlsplit(self.path)
        length = int(self.headers.get("Content-Length") or 0)
        request = RecordedRequest(
            method=method,
            path=parts.path,
            query=parse_qs(parts.query),
            headers={key.lower(): value for key, value in self.headers.items()},
            body=self.rfile.read(length) if length else b"",
        )
        self.state.requests.append(request)

        if self.state.required_token and request.headers.get("authorization") != f"Bearer {self.state.required_token}":
            self._reply(401, {"error": "unauthenticated", "code": 16, "message": "Unauthenticated"})
            return
        status, payload = self._route(request)
        self._reply(status, payload)

    def _route(self, request: RecordedRequest) -> tuple[int, object]:
        state = self.state
        path = request.path
        if (request.method, path) == ("GET", f"{API}/healthz"):
            if state.healthz_html:
                return 200, "<html><body>Log in to Kubeflow</body></html>"
            return 200, {"commit_sha": "stand-in", "tag_name": "2.5.0", "multi_user": False}

        if (request.method, path) == ("GET", f"{API}/pipelines"):
            name = _display_name_filter(request.query)
            found = [pipeline for pipeline in state.pipelines.values() if name in (None, pipeline["display_name"])]
            return 200, {"pipelines": found, "total_size": len(found)} if found else {}

        if (request.method, path) == ("POST", f"{API}/pipelines/upload"):
            pipeline_id = f"pipeline-{next(state.ids)}"
            name = request.query["name"][0]
            pipeline = {"pipeline_id": pipeline_id, "display_name": name, "created_at": CREATED_AT}
            state.pipelines[pipeline_id] = pipeline
            state.versions[pipeline_id] = [self._version(pipeline_id, name)]
            return 200, pipeline

        if (request.method, path) == ("POST", f"{API}/pipelines/upload_version"):
            pipeline_id = request.query["pipelineid"][0]
            version = self._version(pipeline_id, request.query["name"][0])
            state.versions[pipeline_id].append(version)
            return 200, version

        if request.method == "GET" and path.startswith(f"{API}/pipelines/") and path.endswith("/versions"):
            pipeline_id = path.split("/")[-2]
            name = _display_name_filter(request.query)
            found = [version for version in state.versions.get(pipeline_id, []) if name in (None, version["display_name"])]
            if request.query.get("sort_by") == ["created_at desc"]:
                found = list(reversed(found))
            return 200, {"pipeline_versions": found, "total_size": len(found)} if found else {}

        if (request.method, path) == ("GET", f"{API}/experiments"):
            name = _display_name_filter(request.query)
            found = [experiment for experiment in state.experiments.values() if name in (None, experiment["display_name"])]
            return 200, {"experiments": found, "total_size": len(found)} if found else {}

        if (request.method, path) == ("POST", f"{API}/experiments"):
            experiment_id = f"experiment-{next(state.ids)}"
            experiment = {
                "experiment_id": experiment_id,
                "display_name": request.json()["display_name"],
                "created_at": CREATED_AT,
                "storage_state": "AVAILABLE",
            }
            state.experiments[experiment_id] = experiment
            return 200, experiment

        if (request.method, path) == ("POST", f"{API}/runs"):
            if state.fail_runs_with:
                return state.fail_runs_with, {"error": "run creation failed", "message": "quota exceeded"}
            run = {**request.json(), "run_id": f"run-{next(state.ids)}", "state": "PENDING", "created_at": CREATED_AT}
            state.runs.append(run)
            return 200, run

        return 404, {"error": f"no route for {request.method} {path}"}

    def _version(self, pipeline_id: str, name: str) -> dict:
        return {
            "pipeline_id": pipeline_id,
            "pipeline_version_id": f"version-{next(self.state.ids)}",
            "display_name": name,
            "created_at": CREATED_AT,
        }

    def _reply(self, status: int, payload: object) -> None:
        if isinstance(payload, str):
            body, content_type = payload.encode(), "text/html"
        else:
            body, content_type = json.dumps(payload).encode(), "application/json"
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)


@pytest.fixture
def stand_in() -> Iterator[tuple[str, StandInState]]:
    state = StandInState()
    handler = type("Handler", (StandInHandler,), {"state": state})
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}", state
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)


@pytest.fixture(scope="module")
def package(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The committed compiled pipeline: submitting it needs no compilation in every test."""
    committed = Path(__file__).resolve().parents[1] / "pipelines" / "hybrid_dialogue_pipeline.yaml"
    copy = tmp_path_factory.mktemp("package") / "pipeline.yaml"
    copy.write_bytes(committed.read_bytes())
    return copy


@pytest.fixture
def no_credentials(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.delenv("KFP_TOKEN", raising=False)
    monkeypatch.delenv("KFP_COOKIE", raising=False)
    # kfp.Client reads a saved context (namespace, cookies) from the home directory.
    monkeypatch.setenv("HOME", str(tmp_path))


def submit(host: str, package: Path, *extra: str) -> object:
    arguments = ["kfp", "submit", "--host", host, "--package", str(package), *extra]
    return CliRunner().invoke(cli, arguments, catch_exceptions=False)


def test_submit_uploads_and_starts_run(
    stand_in: tuple[str, StandInState], package: Path, no_credentials: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    host, state = stand_in
    monkeypatch.setenv("KFP_TOKEN", "token-123")

    result = submit(
        host, package,
        "--experiment", "team-a",
        "--run-name", "nightly",
        "--param", "raw_data_uri=s3://hybrid-dialogue/data/raw",
        "--param", "preset=cpu",
        "--param", "accelerator_limit=2",
        "--set", "evaluate.max_test_pairs=50",
    )

    assert result.exit_code == 0, result.output
    [upload] = state.calls("POST", f"{API}/pipelines/upload")
    assert upload.query["name"] == ["hybrid-dialogue"]
    assert package.read_bytes() in upload.body

    [experiment] = state.calls("POST", f"{API}/experiments")
    assert experiment.json()["display_name"] == "team-a"

    [run_request] = state.calls("POST", f"{API}/runs")
    run = run_request.json()
    assert run["display_name"] == "nightly"
    assert run["experiment_id"] == next(iter(state.experiments))
    [version] = state.versions[upload_id := next(iter(state.pipelines))]
    assert run["pipeline_version_reference"] == {
        "pipeline_id": upload_id,
        "pipeline_version_id": version["pipeline_version_id"],
    }

    parameters = run["runtime_config"]["parameters"]
    assert parameters["raw_data_uri"] == "s3://hybrid-dialogue/data/raw"
    assert parameters["preset"] == "cpu"
    assert parameters["accelerator_limit"] == "2"
    params = json.loads(parameters["params_json"])
    assert params["evaluate"]["max_test_pairs"] == 50
    assert set(parameters) == {"raw_data_uri", "preset", "accelerator_limit", "params_json"}

    assert {request.headers.get("authorization") for request in state.requests} == {"Bearer token-123"}
    assert f"Started run {state.runs[0]['run_id']} (nightly)" in result.output


def test_submit_reuses_identical_version(
    stand_in: tuple[str, StandInState], package: Path, no_credentials: None
) -> None:
    host, state = stand_in
    raw = "--param", "raw_data_uri=s3://hybrid-dialogue/data/raw"

    for _ in range(3):
        result = submit(host, package, *raw)
        assert result.exit_code == 0, result.output

    # The first submission creates the pipeline. The second adds a version
    # named after the package digest, and the third finds that version.
    assert len(state.calls("POST", f"{API}/pipelines/upload")) == 1
    [version_upload] = state.calls("POST", f"{API}/pipelines/upload_version")
    assert version_upload.query["name"][0].startswith("hybrid-dialogue-")
    assert version_upload.query["pipelineid"] == [next(iter(state.pipelines))]
    assert len(state.runs) == 3
    assert state.runs[1]["pipeline_version_reference"] == state.runs[2]["pipeline_version_reference"]
    assert len(state.experiments) == 1


def test_submit_sends_cookie(
    stand_in: tuple[str, StandInState], package: Path, no_credentials: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    host, state = stand_in
    monkeypatch.setenv("KFP_COOKIE", "authservice_session=abc123")

    result = submit(host, package, "--param", "raw_data_uri=/data/raw")

    assert result.exit_code == 0, result.output
    assert {request.headers.get("cookie") for request in state.requests} == {"authservice_session=abc123"}
    assert all("authorization" not in request.headers for request in state.requests)


def test_submit_rejected_token_fails_clearly(
    stand_in: tuple[str, StandInState], package: Path, no_credentials: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    host, state = stand_in
    state.required_token = "right-token"
    monkeypatch.setenv("KFP_TOKEN", "wrong-token")

    result = submit(host, package, "--param", "raw_data_uri=/data/raw")

    assert result.exit_code == 1
    assert "HTTP 401" in result.output
    assert "KFP_TOKEN" in result.output
    assert "wrong-token" not in result.output
    assert [request.path for request in state.requests] == [f"{API}/healthz"]


def test_submit_login_page_fails_clearly(
    stand_in: tuple[str, StandInState], package: Path, no_credentials: None
) -> None:
    host, state = stand_in
    state.healthz_html = True

    result = submit(host, package, "--param", "raw_data_uri=/data/raw")

    assert result.exit_code == 1
    assert "login page" in result.output
    assert "KFP_COOKIE" in result.output
    assert state.calls("POST", f"{API}/pipelines/upload") == []


def test_submit_unreachable_host_fails_fast(package: Path, no_credentials: None) -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        closed_port = probe.getsockname()[1]
    started = time.monotonic()

    result = submit(f"http://127.0.0.1:{closed_port}", package, "--param", "raw_data_uri=/data/raw")

    assert result.exit_code == 1
    assert f"endpoint http://127.0.0.1:{closed_port} is unreachable" in result.output
    assert time.monotonic() - started < 15


def test_submit_server_error_is_reported(
    stand_in: tuple[str, StandInState], package: Path, no_credentials: None
) -> None:
    host, state = stand_in
    state.fail_runs_with = 500

    result = submit(host, package, "--param", "raw_data_uri=/data/raw")

    assert result.exit_code == 1
    assert "HTTP 500" in result.output
    assert "quota exceeded" in result.output


@pytest.mark.parametrize(
    ("arguments", "message"),
    [
        ((), "missing required pipeline parameter(s): raw_data_uri"),
        (("--param", "raw_data_uri=/r", "--param", "presett=cpu"), "--param presett: unknown pipeline parameter"),
        (("--param", "raw_data_uri=/r", "--param", "preset=huge"), "--param preset='huge' is invalid"),
        (("--param", "raw_data_uri=/r", "--param", "accelerator_limit=two"), "--param accelerator_limit='two' is invalid"),
        (("--param", "raw_data_uri"), "--param 'raw_data_uri' is invalid: expected NAME=VALUE"),
        (("--param", "raw_data_uri=/r", "--set", "evaluate=3"), "--set evaluate: expected SECTION.KEY=VALUE"),
        (
            ("--param", "raw_data_uri=/r", "--param", "params_json={}", "--set", "evaluate.seed=1"),
            "pass either --set or --param params_json",
        ),
    ],
)
def test_submit_invalid_arguments_send_nothing(
    stand_in: tuple[str, StandInState], package: Path, no_credentials: None, arguments: tuple[str, ...], message: str
) -> None:
    host, state = stand_in

    result = submit(host, package, *arguments)

    assert result.exit_code == 1
    assert message in result.output
    assert state.requests == []
