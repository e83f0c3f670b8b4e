"""The evaluate stage end to end on a tiny processed dataset and an untrained tiny model."""

from __future__ import annotations

import json
import shutil
from collections import Counter
from pathlib import Path

import pandas as pd
import pytest

from hybrid_dialogue.data.dataset import load_split, load_tokenizer
from hybrid_dialogue.data.tokenizer import TextTokenizer
from hybrid_dialogue.evaluation.stage import EvaluateConfig, EvaluationError, run_evaluate
from hybrid_dialogue.models.config import ModelSizes, load_model_config
from helpers_data import write_tiny_processed

REPO_ROOT = Path(__file__).resolve().parents[1]
TINY_SIZES = load_model_config(REPO_ROOT / "params.yaml", overrides={"preset": "tiny"}).sizes


def write_model(path: Path, tokenizer: TextTokenizer, sizes: ModelSizes = TINY_SIZES, processed: Path | None = None) -> None:
    """Save an untrained model; with `processed`, give it the inventory of that data's training responses."""
    from hybrid_dialogue.models.inventory import build_response_inventory
    from hybrid_dialogue.models.io import build_model, save_model

    model = build_model(sizes.with_vocab(tokenizer.vocab_size), tokenizer.fingerprint, seed=0)
    if processed is not None:
        train = load_split(processed, "train")
        model.set_response_inventory(
            build_response_inventory(
                train.frame["agent_text"].tolist(), train.frame["dialogue_id"].tolist(), train.response_ids, 1, 100
            )[0]
        )
    save_model(model, path)


@pytest.fixture(scope="module")
def tiny_setup(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    root = tmp_path_factory.mktemp("evaluate")
    processed = write_tiny_processed(root / "processed", n_pairs=96)  # 72 train, 12 validation, 12 test
    model_path = root / "hybrid.keras"
    write_model(model_path, load_tokenizer(processed), processed=processed)
    return processed, model_path


@pytest.mark.slow
def test_evaluate_stage_writes_outputs_and_run(tiny_setup, tmp_path: Path, tracking_store: str) -> None:
    import mlflow

    processed, model_path = tiny_setup
    config = EvaluateConfig(max_test_pairs=0, batch_size=8, report_samples=5, seed=3)

    result = run_evaluate(processed, model_path, config, tmp_path / "metrics" / "evaluate.json", tmp_path / "report")

    metrics = json.loads((tmp_path / "metrics" / "evaluate.json").read_text(encoding="utf-8"))
    assert metrics == result.metrics
    assert metrics["pairs"] == {"scored": 12, "total": 12}
    for system in ("model", "generator", "retrieval", "constant"):
        assert 0.0 <= metrics[system]["bleu"] <= 100.0
        assert 0.0 <= metrics[system]["relevance"] <= 1.0
    assert metrics["model"]["perplexity"] >= 1.0
    for system in ("model", "generator"):
        assert 0.0 <= metrics[system]["discriminator_roc_auc"] <= 1.0

    # Every intent has its own response templates, so the classifier recognises the references.
    assert metrics["reference"]["relevance"] == pytest.approx(1.0)
    # The constant response is relevant exactly where the customer's intent is its own intent.
    train, test = load_split(processed, "train").frame, load_split(processed, "test").frame
    constant = Counter(train["agent_text"]).most_common(1)[0][0]
    constant_intent = train.loc[train["agent_text"] == constant, "intent"].iloc[0]
    assert metrics["constant"]["relevance"] == pytest.approx((test["intent"] == constant_intent).mean())
    assert metrics["retrieval"]["relevance"] > metrics["constant"]["relevance"]
    assert metrics["constant"]["distinct_1"] < metrics["reference"]["distinct_1"]

    markdown = (tmp_path / "report" / "report.md").read_text(encoding="utf-8")
    html = (tmp_path / "report" / "report.html").read_text(encoding="utf-8")
    bleu_cells = " | ".join(f"{metrics[system]['bleu']:.2f}" for system in ("model", "generator", "retrieval"))
    assert f"| BLEU (0-100) | {bleu_cells} |" in markdown
    assert len(result.samples) == 5
    assert all(sample.customer_text in set(test["customer_text"]) for sample in result.samples)
    # The model returns replies from its inventory of training responses. The generator column decodes freely.
    assert all(sample.generated in set(train["agent_text"]) for sample in result.samples)
    assert all(sample.free_generated for sample in result.samples)
    assert "inventory responses" in result.notes[0]
    assert markdown.count(f"| {len(result.samples)} | ") == 1
    assert "<table" in html
    assert "http" not in html

    run = mlflow.get_run(result.run_id)
    assert run.data.tags["hybrid_dialogue.stage"] == "evaluate"
    assert run.data.metrics["model.bleu"] == pytest.approx(metrics["model"]["bleu"])
    assert run.data.metrics["constant.relevance"] == pytest.approx(metrics["constant"]["relevance"])
    assert run.data.params["max_test_pairs"] == "0"
    artifacts = {item.path for item in mlflow.MlflowClient().list_artifacts(result.run_id, "evaluation")}
    assert artifacts == {"evaluation/report.md", "evaluation/report.html", "evaluation/evaluate.json"}


@pytest.mark.slow
def test_evaluate_stage_is_deterministic(tiny_setup, tmp_path: Path, tracking_store: str) -> None:
    processed, model_path = tiny_setup
    config = EvaluateConfig(max_test_pairs=8, batch_size=4, report_samples=3)

    first = run_evaluate(processed, model_path, config, tmp_path / "a.json", tmp_path / "a")
    second = run_evaluate(processed, model_path, config, tmp_path / "b.json", tmp_path / "b")

    assert first.metrics["pairs"] == {"scored": 8, "total": 12}
    assert first.metrics == second.metrics
    assert (tmp_path / "a" / "report.md").read_text() == (tmp_path / "b" / "report.md").read_text()


@pytest.mark.slow
def test_evaluate_stage_skips_relevance_without_intents(tiny_setup, tmp_path: Path, tracking_store: str) -> None:
    source, model_path = tiny_setup
    processed = tmp_path / "processed"
    shutil.copytree(source, processed)
    for split in ("train", "validation", "test"):
        frame = pd.read_parquet(processed / f"{split}.parquet")
        frame["intent"] = ""
        frame.to_parquet(processed / f"{split}.parquet", index=False)

    result = run_evaluate(processed, model_path, EvaluateConfig(batch_size=4), tmp_path / "m.json", tmp_path / "r")

    assert all("relevance" not in values for values in result.metrics.values())
    assert any("Relevance skipped" in note for note in result.notes)
    assert "Relevance skipped" in (tmp_path / "r" / "report.md").read_text(encoding="utf-8")


def test_evaluate_stage_rejects_other_max_len(tiny_setup, tmp_path: Path, tracking_store: str) -> None:
    processed, _ = tiny_setup
    max_len = TINY_SIZES.max_len
    sizes = TINY_SIZES.model_copy(update={"max_len": max_len + 4})
    write_model(tmp_path / "long.keras", load_tokenizer(processed), sizes)

    with pytest.raises(EvaluationError, match=f"max_len {max_len + 4}.*max_len {max_len}"):
        run_evaluate(processed, tmp_path / "long.keras", EvaluateConfig(), tmp_path / "m.json", tmp_path / "r")
    assert not (tmp_path / "m.json").exists()


@pytest.mark.slow
def test_evaluate_command_prints_summary(tiny_setup, tmp_path: Path, tracking_store: str) -> None:
    from click.testing import CliRunner

    from hybrid_dialogue.cli.main import cli

    processed, model_path = tiny_setup
    arguments = [
        "evaluate", "--model", str(model_path), "--processed-dir", str(processed),
        "--params", str(REPO_ROOT / "params.yaml"), "--metrics", str(tmp_path / "evaluate.json"),
        "--report-dir", str(tmp_path / "report"), "--max-test-pairs", "6",
    ]

    result = CliRunner().invoke(cli, arguments)

    assert result.exit_code == 0, result.output
    assert "retrieval  BLEU" in result.output
    assert json.loads((tmp_path / "evaluate.json").read_text())["pairs"]["scored"] == 6


def test_evaluate_command_reports_missing_data(tmp_path: Path, tracking_store: str) -> None:
    from click.testing import CliRunner

    from hybrid_dialogue.cli.main import cli

    arguments = ["evaluate", "--processed-dir", str(tmp_path / "absent"), "--params", str(REPO_ROOT / "params.yaml")]

    result = CliRunner().invoke(cli, arguments)

    assert result.exit_code == 1
    assert "manifest.json not found" in result.output
    assert "Traceback" not in result.output


def test_evaluate_command_rejects_negative_pairs(monkeypatch: pytest.MonkeyPatch, capsys) -> None:
    from hybrid_dialogue.cli.main import main

    monkeypatch.chdir(REPO_ROOT)
    monkeypatch.setattr("sys.argv", ["hybrid-dialogue", "evaluate", "--max-test-pairs", "-1"])

    with pytest.raises(SystemExit) as exit_info:
        main()

    assert exit_info.value.code == 2
    stderr = capsys.readouterr().err
    assert "evaluate.max_test_pairs = -1 is invalid" in stderr
    assert "Allowed range: >= 0" in stderr
