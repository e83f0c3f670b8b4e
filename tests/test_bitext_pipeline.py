"""The whole DVC pipeline on a few hundred exchanges of the public Bitext corpus, on the `tiny` preset.

One module-scoped run, in a temporary git + DVC copy of the project, does what
a user does with `make run DATA=bitext.csv FORMAT=bitext`: `make import-data`
(which runs `hybrid-dialogue corpus import` and `dvc commit data.dvc`), then
`dvc repro` through the register stage against a fresh SQLite MLflow store.
The tests below read its outputs.
"""

from __future__ import annotations

import csv
import hashlib
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import mlflow
import pytest
import yaml

from conftest import BITEXT_CSV
from hybrid_dialogue import paths
from hybrid_dialogue.data.records import import_manifest_path
from hybrid_dialogue.registry import CHALLENGER_ALIAS, MODEL_NAME

REPO_ROOT = Path(__file__).resolve().parents[1]
BIN_DIR = Path(sys.executable).parent
# Every 20th row of the 6,480: 324 exchanges, 11 to 13 of each of the 27
# intents, enough for every intent to reach the validation and test splits.
ROW_STEP = 20
STAGES = (
    "preprocess", "vae_pretrain", "gan_pretrain", "hybrid_finetune",
    "bias_mitigation", "shap_analysis", "evaluate", "register",
)  # fmt: skip
# Project files the copy needs besides src/ (which dvc.yaml lists as stage
# dependencies): the pipeline definition, the corpus pointer and the Makefile.
PROJECT_FILES = ("dvc.yaml", "data.dvc", "Makefile", ".gitignore", ".dvcignore")


def subsample_bitext(source: Path, target: Path, step: int) -> int:
    """Copy the header and every `step`-th row of the Bitext CSV, and return the number of rows written."""
    with source.open(encoding="utf-8", newline="") as handle:
        reader = csv.reader(handle)
        header = next(reader)
        rows = [row for index, row in enumerate(reader) if index % step == 0]
    with target.open("w", encoding="utf-8", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(header)
        writer.writerows(rows)
    return len(rows)


def write_tiny_params(path: Path) -> None:
    """Copy params.yaml with the tiny preset and small audit, explanation and evaluation samples."""
    params = yaml.safe_load((REPO_ROOT / "params.yaml").read_text(encoding="utf-8"))
    params["model"]["preset"] = "tiny"
    params["preprocess"]["max_len"] = params["model"]["presets"]["tiny"]["max_len"]  # must equal the model's
    params["preprocess"]["vocab_size"] = 400
    params["bias_mitigation"]["audit"].update({"max_probe_messages": 40, "max_test_pairs": 40})
    params["shap_analysis"].update({"n_examples": 3, "max_evals": 40})
    params["evaluate"]["max_test_pairs"] = 40
    path.write_text(yaml.safe_dump(params, sort_keys=False), encoding="utf-8")


def make_project_copy(repo: Path) -> None:
    """Copy the pipeline's files into the new directory `repo`, with the tiny-preset params.yaml."""
    repo.mkdir()
    for name in PROJECT_FILES:
        shutil.copy(REPO_ROOT / name, repo / name)
    shutil.copytree(REPO_ROOT / "src", repo / "src", ignore=shutil.ignore_patterns("__pycache__", "*.egg-info"))
    write_tiny_params(repo / "params.yaml")


def dvc_dir_entries(repo: Path, dir_md5: str) -> list[dict]:
    """Return the file list that DVC stored in its cache for a directory hash `<md5>.dir`."""
    digest = dir_md5.removesuffix(".dir")
    listing = repo / ".dvc" / "cache" / "files" / "md5" / digest[:2] / (digest[2:] + ".dir")
    return json.loads(listing.read_text(encoding="utf-8"))


@pytest.fixture(scope="module")
def pipeline(tmp_path_factory: pytest.TempPathFactory) -> dict:
    if not BITEXT_CSV.is_file():
        pytest.skip(f"public Bitext corpus not found at {BITEXT_CSV} (only present on project machines)")

    workspace = tmp_path_factory.mktemp("bitext-pipeline")
    repo = workspace / "repo"
    make_project_copy(repo)
    subsample = workspace / "bitext_sample.csv"
    n_rows = subsample_bitext(BITEXT_CSV, subsample, ROW_STEP)
    tracking_uri = f"sqlite:///{workspace / 'mlflow.db'}"
    env = {
        **os.environ,
        "PATH": str(BIN_DIR) + os.pathsep + os.environ.get("PATH", ""),
        "DVC_NO_ANALYTICS": "1",
        "DVC_SITE_CACHE_DIR": str(workspace / "dvc-site-cache"),
        "MLFLOW_TRACKING_URI": tracking_uri,
        "MLFLOW_EXPERIMENT_NAME": "bitext-pipeline-test",
        "GIT_AUTHOR_NAME": "test", "GIT_AUTHOR_EMAIL": "test@example.invalid",
        "GIT_COMMITTER_NAME": "test", "GIT_COMMITTER_EMAIL": "test@example.invalid",
    }  # fmt: skip
    env.pop("HYBRID_DIALOGUE_EXECUTION_ID", None)

    def run(*command: str, timeout: int = 120) -> subprocess.CompletedProcess:
        result = subprocess.run(command, cwd=repo, env=env, capture_output=True, text=True, timeout=timeout)
        assert result.returncode == 0, f"{' '.join(command)} failed:\n{result.stdout[-4000:]}{result.stderr[-4000:]}"
        return result

    run("git", "init", "-q")
    run(str(BIN_DIR / "dvc"), "init", "-q")
    run("git", "add", ".")
    run("git", "commit", "-q", "-m", "project copy")
    data_dvc_before = yaml.safe_load((repo / "data.dvc").read_text(encoding="utf-8"))

    # The Makefile's own import target with this venv. `-o` keeps make from reinstalling the venv.
    venv = BIN_DIR.parent
    imported = run("make", "--no-print-directory", "-o", str(venv / ".installed"), f"VENV={venv}",
                   "import-data", f"DATA={subsample}", "FORMAT=bitext")  # fmt: skip
    repro = run(str(BIN_DIR / "dvc"), "repro", timeout=900)
    return {
        "repo": repo,
        "n_rows": n_rows,
        "tracking_uri": tracking_uri,
        "data_dvc_before": data_dvc_before,
        "import_output": imported.stdout,
        "repro_output": repro.stdout,
        "git_diff": run("git", "diff", "--name-only").stdout.split(),
    }


@pytest.mark.slow
def test_import_tracked_by_data_dvc(pipeline: dict) -> None:
    repo = pipeline["repo"]
    assert f"Imported {pipeline['n_rows']} dialogues" in pipeline["import_output"]
    assert "data.dvc" in pipeline["git_diff"]

    [before] = pipeline["data_dvc_before"]["outs"]
    [after] = yaml.safe_load((repo / "data.dvc").read_text(encoding="utf-8"))["outs"]
    assert after["md5"] != before["md5"]
    # The corpus and the import's counts file (no quarantine file: nothing was rejected).
    assert after["nfiles"] == 2
    corpus = repo / paths.RAW_CORPUS
    counts = import_manifest_path(corpus)
    assert after["size"] == corpus.stat().st_size + counts.stat().st_size
    entries = {entry["relpath"]: entry["md5"] for entry in dvc_dir_entries(repo, after["md5"])}
    assert entries == {
        paths.RAW_CORPUS.name: hashlib.md5(corpus.read_bytes()).hexdigest(),
        counts.name: hashlib.md5(counts.read_bytes()).hexdigest(),
    }


@pytest.mark.slow
def test_every_stage_ran_and_wrote_outputs(pipeline: dict) -> None:
    repo = pipeline["repo"]
    lock = yaml.safe_load((repo / "dvc.lock").read_text(encoding="utf-8"))["stages"]
    assert set(lock) == set(STAGES)
    stages = yaml.safe_load((repo / "dvc.yaml").read_text(encoding="utf-8"))["stages"]
    for name, stage in stages.items():
        for output in stage.get("outs", []) + stage.get("metrics", []):
            output_path = next(iter(output)) if isinstance(output, dict) else output
            assert (repo / output_path).exists(), f"stage {name} did not write {output_path}"

    preprocess = json.loads((repo / paths.PREPROCESS_METRICS).read_text(encoding="utf-8"))
    assert preprocess["pairs"]["total"] == pipeline["n_rows"]
    assert preprocess["intents"] == 27
    assert preprocess["records"]["quarantined"] == 0
    assert lock["vae_pretrain"]["params"]["params.yaml"]["model.preset"] == "tiny"


@pytest.mark.slow
def test_evaluation_rows_in_range(pipeline: dict) -> None:
    metrics = json.loads((pipeline["repo"] / paths.EVALUATE_METRICS).read_text(encoding="utf-8"))
    assert 0 < metrics["pairs"]["scored"] <= 40
    for system in ("model", "retrieval", "constant"):
        assert 0.0 <= metrics[system]["bleu"] <= 100.0, system
        assert 0.0 <= metrics[system]["relevance"] <= 1.0, system
    assert metrics["model"]["perplexity"] >= 1.0
    # The retrieval baseline returns the training response of a similar
    # message, and Bitext responses within an intent are close paraphrases.
    assert metrics["retrieval"]["relevance"] > metrics["constant"]["relevance"]


@pytest.mark.slow
def test_bias_metrics_in_range(pipeline: dict) -> None:
    bias = json.loads((pipeline["repo"] / paths.BIAS_METRICS).read_text(encoding="utf-8"))
    for phase in ("before", "after"):
        quality = bias[phase]["quality"]
        assert 0.0 <= quality["bleu"] <= 100.0, phase
        assert 0.0 <= quality["relevance"] <= 1.0, phase
        assert quality["perplexity"] >= 1.0, phase

    # Bitext rows carry no gender or region metadata, and in this sample almost
    # no message names a person, so the stage reports that no gap was measured.
    assert bias["after"]["test_gaps"] == {}
    assert bias["after"]["gap_source"] == "not measured"
    assert bias["gap_after"] is None


@pytest.mark.slow
def test_challenger_version_registered(pipeline: dict) -> None:
    client = mlflow.MlflowClient(tracking_uri=pipeline["tracking_uri"])
    version = client.get_model_version_by_alias(MODEL_NAME, CHALLENGER_ALIAS)
    assert str(version.version) == "1"
    [data_out] = yaml.safe_load((pipeline["repo"] / "data.dvc").read_text(encoding="utf-8"))["outs"]
    assert version.tags["data_version"] == data_out["md5"]
    evaluation = json.loads((pipeline["repo"] / paths.EVALUATE_METRICS).read_text(encoding="utf-8"))
    assert float(version.tags["metric.bleu"]) == pytest.approx(evaluation["model"]["bleu"])

    written = json.loads((pipeline["repo"] / paths.REGISTER_METRICS).read_text(encoding="utf-8"))
    assert written["version"] == "1"
    assert CHALLENGER_ALIAS in written["aliases"]
    assert written["tracking_uri"] == pipeline["tracking_uri"]
