"""The compiled Kubeflow pipeline: up to date with the code, and shaped as a cluster needs it."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from hybrid_dialogue.config import load_params

STAGE_TASKS = {
    "preprocess",
    "vae-pretrain",
    "gan-pretrain",
    "hybrid-finetune",
    "bias-mitigation",
    "shap-analysis",
    "evaluate",
    "register",
}
TRAINING_TASKS = {"vae-pretrain", "gan-pretrain", "hybrid-finetune", "bias-mitigation"}
DEFAULT_IMAGE = "ghcr.io/hybrid-dialogue/hybrid-dialogue:0.1.0"
SECRET_KEYS = {
    "hybrid-dialogue-s3": {"AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY"},
    "hybrid-dialogue-mlflow": {"MLFLOW_TRACKING_USERNAME", "MLFLOW_TRACKING_PASSWORD"},
}
CONFIG_MAP_KEYS = {"MLFLOW_TRACKING_URI", "MLFLOW_S3_ENDPOINT_URL", "HYBRID_DIALOGUE_BUCKET", "AWS_DEFAULT_REGION"}
CLI = str(Path(sys.executable).parent / "hybrid-dialogue")


def compile_with_cli(repo_root: Path, output: Path, image: str | None = None) -> subprocess.CompletedProcess:
    """Compile in a fresh process, so the image constant is read from this environment."""
    env = {key: value for key, value in os.environ.items() if key != "HYBRID_DIALOGUE_IMAGE"}
    if image is not None:
        env["HYBRID_DIALOGUE_IMAGE"] = image
    command = [CLI, "kfp", "compile", "--output", str(output)]
    return subprocess.run(command, cwd=repo_root, env=env, capture_output=True, text=True, timeout=300)


@pytest.fixture(scope="module")
def compiled(tmp_path_factory: pytest.TempPathFactory) -> Path:
    repo_root = Path(__file__).resolve().parents[1]
    output = tmp_path_factory.mktemp("compiled") / "pipeline.yaml"
    result = compile_with_cli(repo_root, output)
    assert result.returncode == 0, result.stderr
    return output


@pytest.fixture(scope="module")
def spec(compiled: Path) -> dict:
    return next(yaml.safe_load_all(compiled.read_text(encoding="utf-8")))


@pytest.fixture(scope="module")
def platform(compiled: Path) -> dict:
    documents = list(yaml.safe_load_all(compiled.read_text(encoding="utf-8")))
    assert len(documents) == 2, "expected the pipeline spec and the Kubernetes platform spec"
    return documents[1]["platforms"]["kubernetes"]["deploymentSpec"]["executors"]


def executor_of(spec: dict, task: str) -> dict:
    component = spec["root"]["dag"]["tasks"][task]["componentRef"]["name"]
    label = spec["components"][component]["executorLabel"]
    return spec["deploymentSpec"]["executors"][label]


def test_committed_yaml_is_up_to_date(compiled: Path, repo_root: Path) -> None:
    committed = repo_root / "pipelines" / "hybrid_dialogue_pipeline.yaml"
    assert committed.is_file(), "run `hybrid-dialogue kfp compile` and commit pipelines/hybrid_dialogue_pipeline.yaml"
    assert committed.read_text(encoding="utf-8") == compiled.read_text(encoding="utf-8"), (
        "pipelines/hybrid_dialogue_pipeline.yaml is out of date with components/, pipelines/ or "
        "params.yaml: run `hybrid-dialogue kfp compile` and commit the file"
    )


def test_compilation_is_deterministic(compiled: Path, tmp_path: Path, repo_root: Path) -> None:
    second = tmp_path / "again.yaml"
    result = compile_with_cli(repo_root, second)

    assert result.returncode == 0, result.stderr
    assert second.read_bytes() == compiled.read_bytes()


def test_compile_check_flags_stale_file(tmp_path: Path, repo_root: Path) -> None:
    stale = tmp_path / "stale.yaml"
    stale.write_text("# PIPELINE DEFINITION\n", encoding="utf-8")
    command = [CLI, "kfp", "compile", "--check", "--output", str(stale)]

    result = subprocess.run(command, cwd=repo_root, capture_output=True, text=True, timeout=300)

    assert result.returncode == 1
    assert "out of date" in result.stderr
    assert stale.read_text(encoding="utf-8") == "# PIPELINE DEFINITION\n"


def test_dag_has_eight_stages_and_importer(spec: dict) -> None:
    tasks = spec["root"]["dag"]["tasks"]

    assert set(tasks) == STAGE_TASKS | {"importer"}
    assert tasks["importer"]["taskInfo"]["name"] == "raw-data"
    assert tasks["importer"]["inputs"]["parameters"]["uri"] == {"componentInputParameter": "raw_data_uri"}


@pytest.mark.parametrize(
    ("task", "upstream"),
    [
        ("preprocess", {"importer"}),
        ("vae-pretrain", {"preprocess"}),
        ("gan-pretrain", {"preprocess", "vae-pretrain"}),
        ("hybrid-finetune", {"preprocess", "gan-pretrain"}),
        ("bias-mitigation", {"preprocess", "hybrid-finetune"}),
        ("shap-analysis", {"preprocess", "bias-mitigation"}),
        ("evaluate", {"preprocess", "bias-mitigation"}),
        ("register", {"preprocess", "bias-mitigation", "evaluate"}),
    ],
)
def test_dag_edges(spec: dict, task: str, upstream: set[str]) -> None:
    assert set(spec["root"]["dag"]["tasks"][task]["dependentTasks"]) == upstream


def test_pipeline_parameters_and_defaults(spec: dict, repo_root: Path) -> None:
    parameters = spec["root"]["inputDefinitions"]["parameters"]

    assert set(parameters) == {
        "raw_data_uri",
        "preset",
        "mlflow_experiment",
        "accelerator_type",
        "accelerator_limit",
        "params_json",
    }
    assert "defaultValue" not in parameters["raw_data_uri"]
    assert parameters["preset"]["defaultValue"] == "seed"
    assert parameters["accelerator_type"]["defaultValue"] == "nvidia.com/gpu"
    assert parameters["accelerator_limit"]["defaultValue"] == "1"
    assert json.loads(parameters["params_json"]["defaultValue"]) == load_params(repo_root / "params.yaml")


@pytest.mark.parametrize("task", sorted(TRAINING_TASKS))
def test_training_tasks_request_accelerators(spec: dict, task: str) -> None:
    accelerator = executor_of(spec, task)["container"]["resources"]["accelerator"]

    assert accelerator["resourceType"] == "{{$.inputs.parameters['pipelinechannel--accelerator_type']}}"
    assert accelerator["resourceCount"] == "{{$.inputs.parameters['pipelinechannel--accelerator_limit']}}"


@pytest.mark.parametrize("task", sorted(STAGE_TASKS - TRAINING_TASKS))
def test_other_tasks_request_no_accelerator(spec: dict, task: str) -> None:
    assert "accelerator" not in executor_of(spec, task)["container"]["resources"]


@pytest.mark.parametrize("task", sorted(STAGE_TASKS))
def test_every_task_sets_cpu_and_memory(spec: dict, task: str) -> None:
    resources = executor_of(spec, task)["container"]["resources"]

    for key in ("resourceCpuRequest", "resourceCpuLimit", "resourceMemoryRequest", "resourceMemoryLimit"):
        assert key in resources, f"{task} lacks {key}"
    assert resources["cpuRequest"] <= resources["cpuLimit"]
    assert resources["memoryRequest"] <= resources["memoryLimit"]


@pytest.mark.parametrize("task", sorted(STAGE_TASKS))
def test_every_task_uses_pinned_image_without_pip(spec: dict, task: str) -> None:
    container = executor_of(spec, task)["container"]

    assert container["image"] == DEFAULT_IMAGE
    assert "pip install" not in " ".join(container["command"])


@pytest.mark.parametrize("task", sorted(STAGE_TASKS))
def test_every_task_reads_secret_and_config_map(spec: dict, platform: dict, task: str) -> None:
    label = spec["components"][spec["root"]["dag"]["tasks"][task]["componentRef"]["name"]]["executorLabel"]
    kubernetes = platform[label]

    secrets = {secret["secretName"]: secret for secret in kubernetes["secretAsEnv"]}
    assert set(secrets) == set(SECRET_KEYS)
    for name, keys in SECRET_KEYS.items():
        assert {item["secretKey"] for item in secrets[name]["keyToEnv"]} == keys
        assert all(item["secretKey"] == item["envVar"] for item in secrets[name]["keyToEnv"])
        assert secrets[name]["optional"] is False

    [config_map] = kubernetes["configMapAsEnv"]
    assert config_map["configMapName"] == "hybrid-dialogue-config"
    assert {item["configMapKey"] for item in config_map["keyToEnv"]} == CONFIG_MAP_KEYS


def test_no_settings_as_literal_env(spec: dict) -> None:
    for label, executor in spec["deploymentSpec"]["executors"].items():
        literal_env = executor.get("container", {}).get("env", [])
        assert literal_env == [], f"{label} sets literal environment variables {literal_env}"


@pytest.mark.parametrize("task", sorted(STAGE_TASKS))
def test_every_task_gets_run_job_id(spec: dict, task: str) -> None:
    parameters = spec["root"]["dag"]["tasks"][task]["inputs"]["parameters"]

    assert parameters["execution_id"] == {"runtimeValue": {"constant": "{{$.pipeline_job_uuid}}"}}
    assert parameters["mlflow_experiment"] == {"componentInputParameter": "mlflow_experiment"}


def test_image_override_from_environment(tmp_path: Path, repo_root: Path) -> None:
    output = tmp_path / "gpu.yaml"
    image = "registry.example.com:5000/team/hybrid-dialogue:0.1.0-gpu"

    result = compile_with_cli(repo_root, output, image=image)

    assert result.returncode == 0, result.stderr
    spec = next(yaml.safe_load_all(output.read_text(encoding="utf-8")))
    images = {executor["container"]["image"] for executor in spec["deploymentSpec"]["executors"].values() if "container" in executor}
    assert images == {image}


def test_unpinned_image_fails_compile(tmp_path: Path, repo_root: Path) -> None:
    result = compile_with_cli(repo_root, tmp_path / "unpinned.yaml", image="team/hybrid-dialogue:latest")

    assert result.returncode == 1
    assert "container image 'team/hybrid-dialogue:latest' is not pinned" in result.stderr
    assert "Traceback" not in result.stderr
    assert not (tmp_path / "unpinned.yaml").exists()


@pytest.mark.parametrize(
    "image",
    ["ghcr.io/team/hybrid-dialogue:0.1.0", "localhost:5000/hybrid-dialogue:1", "hybrid-dialogue:0.1.0", "team/hd@sha256:" + "a" * 64],
)
def test_pinned_image_accepts(monkeypatch: pytest.MonkeyPatch, repo_root: Path, image: str) -> None:
    monkeypatch.syspath_prepend(str(repo_root))
    from components.image import pinned_image

    assert pinned_image(image) == image


@pytest.mark.parametrize(
    "image",
    ["team/hybrid-dialogue", "team/hybrid-dialogue:latest", "localhost:5000/hybrid-dialogue", "team/hd:", "team/hd@sha256:abc"],
)
def test_pinned_image_rejects(monkeypatch: pytest.MonkeyPatch, repo_root: Path, image: str) -> None:
    monkeypatch.syspath_prepend(str(repo_root))
    from components.image import pinned_image
    from hybrid_dialogue.kubeflow import KubeflowError

    with pytest.raises(KubeflowError, match="is not pinned"):
        pinned_image(image)


def test_compile_outside_repository_fails_clearly(tmp_path: Path) -> None:
    command = [CLI, "kfp", "compile"]

    result = subprocess.run(command, cwd=tmp_path, capture_output=True, text=True, timeout=120)

    assert result.returncode == 1
    assert "no Hybrid Dialogue repository found" in result.stderr
    assert "Traceback" not in result.stderr
