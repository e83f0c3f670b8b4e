"""Container images and Kubernetes manifests: lint, schema validation, rendering, checkov.

The linters live in .venv-infra (`make .venv-infra/.installed`, which
`make test` runs first); the tests that need them skip with that hint when it
is missing. Overlays render with `kustomize build` or `kubectl kustomize`,
whichever is installed.
"""

from __future__ import annotations

import fnmatch
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from base64 import b64encode
from pathlib import Path

import pytest
import yaml

REPO_ROOT = Path(__file__).resolve().parents[1]
INFRA_BIN = REPO_ROOT / ".venv-infra" / "bin"
DOCKERFILES = [REPO_ROOT / "infra/docker/Dockerfile", REPO_ROOT / "infra/docker/Dockerfile.gpu"]
K8S_DIR = REPO_ROOT / "infra" / "k8s"
SECRETS_DIR = K8S_DIR / "secrets"
# Overlay of the services -> its namespace; each has a "-pipelines" twin that
# puts the components' ConfigMap and Secrets into Kubeflow's namespace.
OVERLAYS = {"dev": "hybrid-dialogue-dev", "prod": "hybrid-dialogue"}
PIPELINE_NAMESPACE = "kubeflow"
# The oldest and newest Kubernetes minor versions checked; the newest is
# kubernetes-validate's latest bundled schema.
KUBERNETES_VERSIONS = ["1.33.0", "1.37.0"]

# The names and keys that pipeline components read; the Kubeflow pipeline refers to them.
COMPONENT_CONFIGMAP = "hybrid-dialogue-config"
COMPONENT_CONFIG_KEYS = {"MLFLOW_TRACKING_URI", "MLFLOW_S3_ENDPOINT_URL", "HYBRID_DIALOGUE_BUCKET", "AWS_DEFAULT_REGION"}
COMPONENT_SECRETS = {
    "hybrid-dialogue-s3": {"AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY"},
    "hybrid-dialogue-mlflow": {"MLFLOW_TRACKING_USERNAME", "MLFLOW_TRACKING_PASSWORD"},
}
# checkov must not call home: no Prisma Cloud download, no PyPI update check.
CHECKOV_ENV = {"CKV_SKIP_PACKAGE_UPDATE_CHECK": "true", "BC_SKIP_MAPPING": "TRUE"}


def infra_tool(name: str) -> Path:
    tool = INFRA_BIN / name
    if not tool.is_file():
        pytest.skip(f"{tool} is missing: run `make .venv-infra/.installed` (make test does)")
    return tool


def kustomize_command() -> list[str] | None:
    if shutil.which("kustomize"):
        return ["kustomize", "build"]
    if shutil.which("kubectl"):
        return ["kubectl", "kustomize"]
    return None


def load_documents(path: Path) -> list[dict]:
    return [doc for doc in yaml.safe_load_all(path.read_text(encoding="utf-8")) if doc]


def manifest_files() -> list[Path]:
    return sorted(path for path in K8S_DIR.rglob("*.yaml") if path.name != "kustomization.yaml")


def env_file_keys(path: Path) -> dict[str, str]:
    pairs = {}
    for line in path.read_text(encoding="utf-8").splitlines():
        if line.strip() and not line.startswith("#"):
            key, _, value = line.partition("=")
            pairs[key] = value
    return pairs


@pytest.fixture(scope="module")
def infra_copy(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A copy of infra/ whose secret env files are the committed placeholders."""
    copy = tmp_path_factory.mktemp("infra") / "infra"
    shutil.copytree(REPO_ROOT / "infra", copy, ignore=shutil.ignore_patterns("*.env"))
    for example in (copy / "k8s" / "secrets").rglob("*.env.example"):
        shutil.copy(example, example.with_suffix(""))
    return copy


@pytest.fixture(scope="module")
def rendered(infra_copy: Path) -> dict[str, list[dict]]:
    """Each overlay rendered by kustomize, as a list of resources."""
    command = kustomize_command()
    if command is None:
        pytest.skip("neither kustomize nor kubectl is installed; test_kustomizations_consistent still runs")
    outputs = {}
    for overlay in [*OVERLAYS, *(f"{name}-pipelines" for name in OVERLAYS)]:
        result = subprocess.run(
            [*command, str(infra_copy / "k8s" / "overlays" / overlay)], capture_output=True, text=True, timeout=120
        )
        assert result.returncode == 0, f"overlay {overlay} does not render:\n{result.stderr}"
        outputs[overlay] = [doc for doc in yaml.safe_load_all(result.stdout) if doc]
    return outputs


# Dockerfiles.


@pytest.mark.parametrize("dockerfile", DOCKERFILES, ids=lambda path: path.name)
def test_hadolint_dockerfile(dockerfile: Path) -> None:
    result = subprocess.run(
        [str(infra_tool("hadolint")), "--no-color", str(dockerfile)], capture_output=True, text=True, timeout=60
    )

    assert result.returncode == 0, result.stdout + result.stderr
    assert result.stdout.strip() == ""


@pytest.mark.parametrize("dockerfile", DOCKERFILES, ids=lambda path: path.name)
def test_dockerfile_runs_as_non_root(dockerfile: Path) -> None:
    instructions = [line.strip() for line in dockerfile.read_text().splitlines() if line.strip()]
    users = [line.split()[1] for line in instructions if line.startswith("USER ")]
    bases = [line.split()[1] for line in instructions if line.startswith("FROM ")]

    assert users and users[-1] == "10001:10001"
    assert all(re.search(r":\d[\w.-]*$", base) or base == "base" for base in bases), bases
    assert not re.search(r"(?i)(password|secret|token)\s*=", dockerfile.read_text())


def dockerignore_excludes(path: str) -> bool:
    # Docker's rule: the last matching line wins, and "!" re-includes. A
    # pattern also matches everything below a matching folder. This covers
    # the patterns .dockerignore uses here, not Docker's full syntax.
    excluded = False
    for line in (REPO_ROOT / ".dockerignore").read_text().splitlines():
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        negated = line.startswith("!")
        pattern = line.lstrip("!").rstrip("/").removeprefix("**/")
        parts = path.split("/")
        prefixes = ["/".join(parts[: i + 1]) for i in range(len(parts))]
        if any(fnmatch.fnmatch(prefix, pattern) or fnmatch.fnmatch(part, pattern) for prefix, part in zip(prefixes, parts)):
            excluded = not negated
    return excluded


def test_dockerignore_keeps_sources_only() -> None:
    copied = set()
    for dockerfile in DOCKERFILES:
        for line in dockerfile.read_text().splitlines():
            if line.startswith("COPY ") and "--from=" not in line:
                copied.update(line.split()[1:-1])

    for source in sorted(copied):
        assert not dockerignore_excludes(source), f"{source} is copied but .dockerignore excludes it"
    for private in [".venv/bin/python", ".git/config", "data/raw/dialogues.jsonl", "mlflow/mlflow.db",
                    "infra/k8s/secrets/s3.env", ".dvc/config.local", ".s3/moto.pid", "models/vae.keras"]:
        assert dockerignore_excludes(private), f".dockerignore lets {private} into the build context"


# Kubernetes manifests.


@pytest.mark.parametrize("version", KUBERNETES_VERSIONS)
def test_manifests_validate_strict(version: str) -> None:
    result = subprocess.run(
        [str(infra_tool("kubernetes-validate")), "--strict", "--quiet", "-k", version, *map(str, manifest_files())],
        capture_output=True,
        text=True,
        timeout=300,
    )

    assert result.returncode == 0, result.stdout + result.stderr


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_overlay_validates_strict(overlay: str, rendered: dict[str, list[dict]], tmp_path: Path) -> None:
    output = tmp_path / f"{overlay}.yaml"
    output.write_text(yaml.safe_dump_all(rendered[overlay]), encoding="utf-8")

    for version in KUBERNETES_VERSIONS:
        result = subprocess.run(
            [str(infra_tool("kubernetes-validate")), "--strict", "--quiet", "-k", version, str(output)],
            capture_output=True,
            text=True,
            timeout=300,
        )
        assert result.returncode == 0, f"Kubernetes {version}: {result.stdout}{result.stderr}"


def test_kustomizations_consistent() -> None:
    # Checked without kustomize: every listed file exists, and every Secret or
    # ConfigMap key a pod reads is defined in the base or the secrets component.
    for kustomization in K8S_DIR.rglob("kustomization.yaml"):
        spec = yaml.safe_load(kustomization.read_text())
        for entry in spec.get("resources", []) + spec.get("components", []):
            assert (kustomization.parent / entry).exists(), f"{kustomization}: {entry} does not exist"
        for generator in spec.get("secretGenerator", []):
            for env in generator.get("envs", []):
                assert (kustomization.parent / f"{env}.example").is_file(), f"{env}.example missing"

    secrets = {}
    for component in SECRETS_DIR.glob("*/kustomization.yaml"):
        for generator in yaml.safe_load(component.read_text())["secretGenerator"]:
            keys = set()
            for env in generator["envs"]:
                keys |= set(env_file_keys(component.parent / f"{env}.example"))
            secrets[generator["name"]] = keys
    configmaps = {}
    base_docs = [doc for folder in ("base", "pipeline-config") for path in (K8S_DIR / folder).glob("*.yaml")
                 if path.name != "kustomization.yaml" for doc in load_documents(path)]
    for doc in base_docs:
        if doc["kind"] == "ConfigMap":
            configmaps[doc["metadata"]["name"]] = set(doc["data"])

    referenced = []
    for doc in base_docs:
        pod = doc.get("spec", {}).get("template", {}).get("spec", {})
        for container in pod.get("initContainers", []) + pod.get("containers", []):
            for env in container.get("env", []):
                source = env.get("valueFrom", {})
                if "secretKeyRef" in source:
                    referenced.append(("Secret", source["secretKeyRef"]["name"], source["secretKeyRef"]["key"]))
                if "configMapKeyRef" in source:
                    referenced.append(("ConfigMap", source["configMapKeyRef"]["name"], source["configMapKeyRef"]["key"]))
            for env_from in container.get("envFrom", []):
                if "secretRef" in env_from:
                    referenced.append(("Secret", env_from["secretRef"]["name"], None))
                if "configMapRef" in env_from:
                    referenced.append(("ConfigMap", env_from["configMapRef"]["name"], None))

    assert referenced
    for kind, name, key in referenced:
        defined = secrets if kind == "Secret" else configmaps
        assert name in defined, f"{kind} {name} is read but never defined"
        assert key is None or key in defined[name], f"{kind} {name} has no key {key}"
    assert configmaps[COMPONENT_CONFIGMAP] == COMPONENT_CONFIG_KEYS
    for name, keys in COMPONENT_SECRETS.items():
        assert secrets[name] == keys


def test_secret_examples_hold_placeholders() -> None:
    tracked = subprocess.run(
        ["git", "ls-files", "--", str(SECRETS_DIR)], cwd=REPO_ROOT, capture_output=True, text=True, check=True
    ).stdout.split()
    examples = sorted(SECRETS_DIR.rglob("*.env.example"))

    assert not [path for path in tracked if path.endswith(".env")], "a real secrets file is tracked by git"
    for component in SECRETS_DIR.glob("*/kustomization.yaml"):
        assert "*.env" in (component.parent / ".gitignore").read_text().split(), component.parent
    assert len(examples) == 5
    for example in examples:
        for key, value in env_file_keys(example).items():
            if re.search("PASSWORD|SECRET|_KEY", key):
                assert value == "REPLACE_ME", f"{example.name}: {key} must be the REPLACE_ME placeholder"


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_overlay_rendering(overlay: str, rendered: dict[str, list[dict]]) -> None:
    namespace = OVERLAYS[overlay]
    resources = rendered[overlay]
    by_kind: dict[str, dict[str, dict]] = {}
    for doc in resources:
        by_kind.setdefault(doc["kind"], {})[doc["metadata"]["name"]] = doc

    assert set(by_kind["Namespace"]) == {namespace}
    for doc in resources:
        if doc["kind"] != "Namespace":
            assert doc["metadata"]["namespace"] == namespace, f"{doc['kind']} {doc['metadata']['name']}"
    config = by_kind["ConfigMap"][COMPONENT_CONFIGMAP]["data"]
    assert config["MLFLOW_TRACKING_URI"] == f"http://mlflow.{namespace}.svc.cluster.local:5000"
    assert config["MLFLOW_S3_ENDPOINT_URL"] == f"http://minio.{namespace}.svc.cluster.local:9000"
    assert set(COMPONENT_SECRETS) <= set(by_kind["Secret"])
    assert {"mlflow", "minio"} <= set(by_kind["Deployment"])
    assert "postgres" in by_kind["StatefulSet"]
    assert "minio-data" in by_kind["PersistentVolumeClaim"]
    assert {"mlflow", "minio", "postgres"} <= set(by_kind["Service"])
    assert "default-deny-ingress" in by_kind["NetworkPolicy"]

    mlflow = by_kind["Deployment"]["mlflow"]["spec"]["template"]["spec"]["containers"][0]
    mlflow_env = {env["name"]: env.get("value") for env in mlflow["env"]}
    assert "--app-name basic-auth" in mlflow["args"][0]
    assert mlflow_env["MLFLOW_BACKEND_STORE_URI"].startswith("postgresql://")
    assert mlflow_env["MLFLOW_AUTH_DATABASE_URI"].startswith("postgresql://")


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_pipelines_overlay_matches_services(overlay: str, rendered: dict[str, list[dict]]) -> None:
    resources = rendered[f"{overlay}-pipelines"]
    services = {(doc["kind"], doc["metadata"]["name"]): doc for doc in rendered[overlay]}

    assert {(doc["kind"], doc["metadata"]["name"]) for doc in resources} == {
        ("ConfigMap", COMPONENT_CONFIGMAP),
        *(("Secret", name) for name in COMPONENT_SECRETS),
    }
    for doc in resources:
        assert doc["metadata"]["namespace"] == PIPELINE_NAMESPACE
        assert doc["data"] == services[(doc["kind"], doc["metadata"]["name"])]["data"], doc["metadata"]["name"]


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_overlay_pods_hardened(overlay: str, rendered: dict[str, list[dict]]) -> None:
    workloads = [doc for doc in rendered[overlay] if doc["kind"] in ("Deployment", "StatefulSet")]

    assert len(workloads) == 3
    for workload in workloads:
        name = workload["metadata"]["name"]
        pod = workload["spec"]["template"]["spec"]
        assert pod["securityContext"]["runAsNonRoot"] is True, name
        assert pod["securityContext"]["seccompProfile"]["type"] == "RuntimeDefault", name
        assert pod["automountServiceAccountToken"] is False, name
        for container in pod.get("initContainers", []) + pod["containers"]:
            label = f"{name}/{container['name']}"
            context = container["securityContext"]
            assert context["allowPrivilegeEscalation"] is False, label
            assert context["readOnlyRootFilesystem"] is True, label
            assert context["capabilities"]["drop"] == ["ALL"], label
            assert {"cpu", "memory"} <= set(container["resources"]["requests"]), label
            assert {"cpu", "memory"} <= set(container["resources"]["limits"]), label
            assert re.search(r":[\w][\w.-]*$", container["image"]), f"{label}: image tag not pinned"
            assert not container["image"].endswith(":latest"), label
            mounts = {mount["mountPath"] for mount in container.get("volumeMounts", [])}
            assert "/tmp" in mounts, f"{label}: a read-only root needs a writable /tmp"


# checkov: every check passes or is skipped with a reason written beside the skip.


@pytest.mark.slow
def test_checkov_passes(infra_copy: Path) -> None:
    checkov = infra_tool("checkov")
    result = subprocess.run(
        [str(checkov), "-d", "infra", "--skip-download", "--framework", "kubernetes", "kustomize", "dockerfile",
         "-o", "json"],
        cwd=infra_copy.parent,
        env={**os.environ, **CHECKOV_ENV},
        capture_output=True,
        text=True,
        timeout=600,
    )
    reports = json.loads(result.stdout)
    reports = reports if isinstance(reports, list) else [reports]
    by_type = {report["check_type"]: report for report in reports}

    assert set(by_type) == {"kubernetes", "kustomize", "dockerfile"}, result.stderr[-2000:]
    for check_type, report in by_type.items():
        failed = [(check["check_id"], check["resource"]) for check in report["results"]["failed_checks"]]
        assert failed == [], f"{check_type}: {failed}"
        assert report["summary"]["parsing_errors"] == 0, check_type
    skipped = {check["check_id"] for report in reports for check in report["results"]["skipped_checks"]}
    assert skipped <= {"CKV_K8S_43", "CKV_K8S_35"}
    if kustomize_command():
        # checkov names a rendered resource "overlay:PATH:KIND.NAMESPACE.NAME", PATH
        # being the overlay folder or its last part.
        scanned = {check["resource"].rsplit(":", 1)[0] for check in by_type["kustomize"]["results"]["passed_checks"]}
        for overlay in [*OVERLAYS, *(f"{name}-pipelines" for name in OVERLAYS)]:
            assert any(group.startswith("overlay:") and group.endswith(overlay) for group in scanned), overlay


def test_checkov_skips_have_reasons() -> None:
    skips = 0
    for path in [*K8S_DIR.rglob("*.yaml"), *DOCKERFILES]:
        lines = path.read_text().splitlines()
        for number, line in enumerate(lines):
            if "checkov.io/skip" in line or "checkov:skip" in line:
                skips += 1
                _, _, reason = line.split(":", 1)[1].partition("=")
                assert len(reason.strip()) > 20, f"{path}:{number + 1}: skip without a reason"
                assert lines[number - 1].strip().startswith("#"), f"{path}:{number + 1}: no comment above the skip"

    assert skips == 6


# Makefile wiring of the local endpoint and lint scripts.


@pytest.mark.parametrize(
    ("target", "script"),
    [
        ("storage-up", "infra/scripts/storage-up.sh"),
        ("storage-down", "infra/scripts/storage-down.sh"),
        ("mlflow-server", "mlflow/server.sh"),
        ("dvc-remote", "infra/scripts/dvc-remote.sh"),
        ("lint-infra", "infra/scripts/lint.sh"),
    ],
)
def test_make_target_runs_script(target: str, script: str) -> None:
    # `make -n` prints the commands without running them.
    result = subprocess.run(["make", "-n", target], cwd=REPO_ROOT, capture_output=True, text=True, timeout=60)

    assert result.returncode == 0, result.stderr
    assert f"bash {script}" in result.stdout
    assert (REPO_ROOT / script).is_file()


# The MLflow container's start-up script from base/mlflow.yaml, run here on loopback.


def mlflow_start_script(port: int) -> str:
    deployment = next(doc for doc in load_documents(K8S_DIR / "base" / "mlflow.yaml") if doc["kind"] == "Deployment")
    script = deployment["spec"]["template"]["spec"]["containers"][0]["args"][0]
    # In the pod the server listens on every interface; here only on loopback.
    assert "--host 0.0.0.0 --port 5000" in script
    return script.replace("--host 0.0.0.0 --port 5000", f"--host 127.0.0.1 --port {port}")


def mlflow_pod_env(tmp_path: Path, **overrides: str) -> dict[str, str]:
    # The variables the Deployment sets, with SQLite in place of PostgreSQL.
    venv_bin = Path(sys.executable).parent
    return {
        **os.environ,
        "PATH": f"{venv_bin}{os.pathsep}{os.environ.get('PATH', '')}",
        "POSTGRES_PASSWORD": "not-used-here",
        "MLFLOW_BACKEND_STORE_URI": f"sqlite:///{tmp_path / 'mlflow.db'}",
        "MLFLOW_AUTH_DATABASE_URI": f"sqlite:///{tmp_path / 'auth.db'}",
        "MLFLOW_AUTH_CONFIG_PATH": str(tmp_path / "basic_auth.ini"),
        "MLFLOW_AUTH_ADMIN_USERNAME": "admin",
        "MLFLOW_AUTH_ADMIN_PASSWORD": "test-admin-password-0123",
        "MLFLOW_FLASK_SERVER_SECRET_KEY": "test-csrf-key-0123",
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "MLFLOW_S3_ENDPOINT_URL": "http://127.0.0.1:9",
        "HYBRID_DIALOGUE_BUCKET": "hybrid-dialogue",
        "MLFLOW_SERVER_ALLOWED_HOSTS": "mlflow,mlflow:*,mlflow.*,localhost:*,127.0.0.1:*",
        "MLFLOW_SERVER_ENABLE_JOB_EXECUTION": "false",
        "MLFLOW_WORKERS": "1",
        **overrides,
    }


@pytest.mark.parametrize(
    "variable", ["POSTGRES_PASSWORD", "MLFLOW_AUTH_ADMIN_PASSWORD", "MLFLOW_FLASK_SERVER_SECRET_KEY", "AWS_SECRET_ACCESS_KEY"]
)
def test_mlflow_pod_rejects_placeholder(variable: str, tmp_path: Path) -> None:
    env = mlflow_pod_env(tmp_path, **{variable: "REPLACE_ME"})

    result = subprocess.run(
        ["sh", "-c", mlflow_start_script(port=9)], env=env, capture_output=True, text=True, timeout=60
    )

    assert result.returncode == 1
    assert f"{variable} is still the placeholder REPLACE_ME" in result.stderr
    assert not (tmp_path / "basic_auth.ini").exists()


@pytest.mark.server
@pytest.mark.slow
def test_mlflow_pod_basic_auth(tmp_path: Path) -> None:
    pytest.importorskip("flask_wtf", reason="Flask-WTF (mlflow[auth] in requirements/main.in) is not installed yet")
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    server = subprocess.Popen(
        ["sh", "-c", mlflow_start_script(port)],
        env=mlflow_pod_env(tmp_path),
        stdout=(tmp_path / "server.log").open("wb"),
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )

    def status(user: str | None, password: str | None, host: str | None = None) -> int:
        request = urllib.request.Request(f"http://127.0.0.1:{port}/api/2.0/mlflow/experiments/search?max_results=1")
        if user is not None:
            request.add_header("Authorization", "Basic " + b64encode(f"{user}:{password}".encode()).decode())
        if host is not None:
            request.add_header("Host", host)
        try:
            with urllib.request.urlopen(request, timeout=10) as response:
                return response.status
        except urllib.error.HTTPError as error:
            return error.code

    try:
        deadline = time.monotonic() + 180
        while True:
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/health", timeout=2):
                    break
            except (urllib.error.URLError, OSError):
                assert server.poll() is None, (tmp_path / "server.log").read_text()[-3000:]
                assert time.monotonic() < deadline, "MLflow did not start within 180 s"
                time.sleep(0.5)

        anonymous = status(None, None)
        wrong = status("admin", "wrong-password")
        admin = status("admin", "test-admin-password-0123")
        cluster_host = status("admin", "test-admin-password-0123", "mlflow.hybrid-dialogue.svc.cluster.local:5000")
        foreign_host = status("admin", "test-admin-password-0123", "attacker.example:5000")
    finally:
        if server.poll() is None:
            os.killpg(server.pid, signal.SIGTERM)
            server.wait(timeout=30)

    assert anonymous == 401
    assert wrong == 401
    assert admin == 200
    assert cluster_host == 200
    assert foreign_host in (400, 403)
    assert (tmp_path / "basic_auth.ini").stat().st_mode & 0o077 == 0
