"""The bias_mitigation and shap_analysis stages end to end on tiny data, and the mitigation parts."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from click.testing import CliRunner

from helpers_fairness import write_named_processed
from hybrid_dialogue.config import load_section
from hybrid_dialogue.data.dataset import load_split, load_tokenizer
from hybrid_dialogue.fairness.config import BiasMitigationConfig, InvarianceConfig
from hybrid_dialogue.fairness.counterfactual import default_swapper

REPO_ROOT = Path(__file__).resolve().parents[1]
CLI = str(Path(sys.executable).parent / "hybrid-dialogue")


def tiny_model_config() -> Any:
    from hybrid_dialogue.models.config import load_model_config

    return load_model_config(REPO_ROOT / "params.yaml", {"preset": "tiny"})


def mitigation_config(**audit: Any) -> BiasMitigationConfig:
    """The repository's section with a short, strong tiny run in which only the invariance term trains."""
    return load_section(
        BiasMitigationConfig,
        "bias_mitigation",
        REPO_ROOT / "params.yaml",
        {
            "invariance.weight": 50.0,
            "invariance.warmup_fraction": 0.0,
            "finetune.batch_size": 16,
            "finetune.learning_rate": 0.01,
            # The invariance term alone trains the encoder. With the other losses on, the latent
            # means of an untrained tiny encoder spread apart faster than the term pulls pairs together.
            "finetune.loss_weights": {"reconstruction": 0.0, "kl": 0.0, "adversarial": 0.0, "content": 0.0},
            "finetune.budgets.tiny": {"epochs": 2, "steps_per_epoch": 6},
            "audit.batch_size": 32,
            **{f"audit.{key}": value for key, value in audit.items()},
        },
    )


def build_input_model(processed: Path, path: Path) -> None:
    """Save an untrained tiny model as the stage's input (the hybrid stage's output in the pipeline)."""
    from hybrid_dialogue.models.io import build_model, save_model

    tokenizer = load_tokenizer(processed)
    model = build_model(tiny_model_config().architecture(tokenizer.vocab_size), tokenizer.fingerprint, seed=3)
    save_model(model, path)


@pytest.fixture(scope="module")
def stages(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """Run bias_mitigation, then shap_analysis on its model, once for the tests below."""
    from hybrid_dialogue.explanation.stage import ShapAnalysisConfig, run_shap_analysis
    from hybrid_dialogue.fairness.stage import run_bias_mitigation

    root = tmp_path_factory.mktemp("fairness-stages")
    processed = write_named_processed(root / "data" / "processed", n_pairs=192)
    build_input_model(processed, root / "models" / "hybrid.keras")
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("MLFLOW_TRACKING_URI", f"sqlite:///{root / 'mlflow.db'}")
        patch.setenv("MLFLOW_EXPERIMENT_NAME", "fairness-test")
        patch.setenv("HYBRID_DIALOGUE_EXECUTION_ID", "fairness-test")
        bias = run_bias_mitigation(
            processed, root / "models" / "hybrid.keras", root / "models" / "mitigated.keras", mitigation_config(),
            tiny_model_config(), root / "metrics" / "bias.json", root / "reports" / "bias", root / "checkpoints",
        )
        shap_config = ShapAnalysisConfig(n_examples=4, max_evals=30, batch_size=16, min_token_count=1)
        shap = run_shap_analysis(processed, bias.model_path, shap_config, root / "reports" / "shap",
                                 root / "metrics" / "shap.json")
    return {"root": root, "processed": processed, "bias": bias, "shap": shap, "tracking_uri": f"sqlite:///{root / 'mlflow.db'}"}


@pytest.mark.slow
def test_mitigation_reduces_invariance_distance(stages: dict[str, Any]) -> None:
    metrics = stages["bias"].metrics

    before, after = metrics["before"]["invariance_distance"], metrics["after"]["invariance_distance"]
    assert before > 0
    assert after < 0.5 * before, (before, after)
    assert metrics["training"]["train/extra"] > 0


@pytest.mark.slow
def test_mitigation_augments_training_pairs(stages: dict[str, Any]) -> None:
    training = stages["bias"].metrics["training"]

    assert training["original_pairs"] == 144
    assert 0 < training["added_pairs"] <= training["original_pairs"]
    assert training["epochs"] == 2


@pytest.mark.slow
def test_bias_metrics_file_layout(stages: dict[str, Any]) -> None:
    from hybrid_dialogue.registry.metrics import read_headline_metrics

    path = stages["root"] / "metrics" / "bias.json"
    metrics = json.loads(path.read_text(encoding="utf-8"))

    assert metrics["gap_after"] == metrics["after"]["gap"]
    assert metrics["preference_gap_after"] == metrics["after"]["preference_gap"]
    assert isinstance(metrics["preference_gap_before"], float)
    assert metrics["gap_before"] == metrics["before"]["gap"]
    assert metrics["after"]["gap_source"] == "test pairs by metadata"
    assert metrics["gap_after"] == metrics["after"]["test_gaps"]["gender"]["difference"]["helpfulness"]
    assert metrics["training"]["reweighed"] is True
    assert metrics["training"]["reweighing"] == "best_group"  # params.yaml's mode
    assert set(metrics["after"]["probe_gaps"]) == {"gender"}
    assert set(metrics["after"]["test_gaps"]) == {"gender", "region"}
    assert metrics["after"]["probe_gaps"]["gender"]["counts"]["female"] > 0
    assert {"bleu", "relevance", "perplexity"} <= set(metrics["after"]["quality"])
    assert metrics["after"]["consistency"]["pairs"] == metrics["after"]["probe_variants"] > 0
    # The promotion gate reads the after-mitigation gap from this file.
    assert read_headline_metrics([path])["fairness_gap"] == pytest.approx(metrics["gap_after"])


@pytest.mark.slow
def test_reference_helpfulness_shows_injected_bias(stages: dict[str, Any]) -> None:
    shares = stages["bias"].metrics["reference_helpfulness"]["gender"]

    assert shares["female"] < shares["male"]


@pytest.mark.slow
def test_bias_report_files(stages: dict[str, Any]) -> None:
    report = stages["root"] / "reports" / "bias"
    markdown = (report / "report.md").read_text(encoding="utf-8")
    page = (report / "report.html").read_text(encoding="utf-8")

    assert "| Headline gap: helpfulness difference between groups (test pairs by metadata) |" in markdown
    assert "## Definitions" in markdown
    assert "Probes: test messages that mention" in markdown
    assert "- Reweighing: best\\_group." in markdown  # Markdown-escaped underscore
    assert "<h2>Definitions</h2>" in page
    assert "Test perplexity" in markdown
    assert "## Example pairs (" in markdown
    assert page.startswith("<!DOCTYPE html>")
    assert "<h2>Before and after</h2>" in page
    assert "hi, i&#x27;m" in page


@pytest.mark.slow
def test_mitigated_model_loads(stages: dict[str, Any]) -> None:
    from hybrid_dialogue.models.io import load_model

    model = load_model(stages["root"] / "models" / "mitigated.keras", tokenizer=load_tokenizer(stages["processed"]))

    assert model.architecture.max_len == tiny_model_config().sizes.max_len
    assert not (stages["root"] / "checkpoints" / "bias_mitigation").exists()


@pytest.mark.slow
def test_stages_log_mlflow_runs(stages: dict[str, Any]) -> None:
    import mlflow

    client = mlflow.MlflowClient(stages["tracking_uri"])
    bias_run = client.get_run(stages["bias"].run_id)
    shap_run = client.get_run(stages["shap"].run_id)

    assert bias_run.data.tags["hybrid_dialogue.stage"] == "bias_mitigation"
    assert bias_run.data.params["bias_mitigation.invariance.weight"] == "50.0"
    assert bias_run.data.metrics["gap_after"] == pytest.approx(stages["bias"].metrics["gap_after"])
    assert "train/extra" in bias_run.data.metrics
    bias_artifacts = {item.path for item in client.list_artifacts(bias_run.info.run_id, "bias")}
    assert {"bias/bias.json", "bias/report"} <= bias_artifacts
    assert shap_run.data.tags["hybrid_dialogue.stage"] == "shap_analysis"
    assert shap_run.data.metrics["examples"] == 4
    shap_artifacts = {item.path for item in client.list_artifacts(shap_run.info.run_id, "shap")}
    assert {"shap/index.html", "shap/message_tokens.png", "shap/shap_values.json"} <= shap_artifacts


@pytest.mark.slow
def test_shap_report_files(stages: dict[str, Any]) -> None:
    report = stages["root"] / "reports" / "shap"
    values = json.loads((report / "shap_values.json").read_text(encoding="utf-8"))
    index = (report / "index.html").read_text(encoding="utf-8")

    assert len(values["message"]["examples"]) == 4
    for example in values["message"]["examples"]:
        assert len(example["tokens"]) == len(example["values"]) > 0
        assert "[PAD]" not in example["tokens"]
        assert sum(example["values"]) == pytest.approx(example["output_value"] - example["base_value"], abs=1e-4)
    assert values["message"]["overall"]
    assert (report / "message_tokens.png").read_bytes()[:4] == b"\x89PNG"
    assert (report / "response_tokens.png").read_bytes()[:4] == b"\x89PNG"
    assert (report / "examples" / "message_000.html").read_text(encoding="utf-8").count("<html") == 1
    assert 'href="examples/message_003.html"' in index
    metrics = json.loads((stages["root"] / "metrics" / "shap.json").read_text(encoding="utf-8"))
    assert metrics["examples"] == 4
    assert metrics["message"]["explained"] == 4


def test_counterfactual_training_adds_swapped_copies(tmp_path: Path) -> None:
    from hybrid_dialogue.fairness.mitigate import counterfactual_training

    processed = write_named_processed(tmp_path / "processed", n_pairs=48)
    train = load_split(processed, "train")
    tokenizer = load_tokenizer(processed)

    data = counterfactual_training(train, default_swapper(), tokenizer, augment=True)
    plain = counterfactual_training(train, default_swapper(), tokenizer, augment=False)

    changed = plain.has_counterfactual.astype(bool)
    assert changed.sum() == data.added_rows > 0
    assert len(data) == len(train) + data.added_rows
    assert len(plain) == len(train)
    np.testing.assert_array_equal(data.input_ids[len(train):], plain.counterfactual_ids[changed])
    np.testing.assert_array_equal(data.counterfactual_ids[len(train):], train.input_ids[changed])
    np.testing.assert_array_equal(data.response_ids[len(train):], train.response_ids[changed])
    np.testing.assert_array_equal(plain.counterfactual_ids[~changed], train.input_ids[~changed])
    assert (data.input_ids[len(train):] != train.input_ids[changed]).any(axis=1).all()


def test_reweighing_weights_hand_checked() -> None:
    from hybrid_dialogue.fairness.mitigate import reweighing_weights

    groups = np.array(["f"] * 4 + ["m"] * 4)
    outcomes = np.array([1, 1, 0, 0, 1, 1, 1, 0], dtype=bool)

    weights = reweighing_weights(groups, outcomes)

    # P(g) P(y) / P(g, y): P(f) = P(m) = 1/2, P(helpful) = 5/8.
    np.testing.assert_allclose(weights, [1.25, 1.25, 0.75, 0.75, 5 / 6, 5 / 6, 5 / 6, 1.5])
    for group in ("f", "m"):
        rows = groups == group
        assert np.average(outcomes[rows], weights=weights[rows]) == pytest.approx(5 / 8)


def test_reweighing_toward_best_group() -> None:
    from hybrid_dialogue.fairness.mitigate import reweighing_weights

    # m always gets the helpful outcome, so no weights give both groups 5/8.
    groups = np.array(["f"] * 4 + ["m"] * 4 + [""] * 2)
    outcomes = np.array([1, 0, 0, 0, 1, 1, 1, 1, 1, 0], dtype=bool)

    weights = reweighing_weights(groups, outcomes, "best_group")

    # P*(helpful) = P(helpful | m) = 1: f's helpful row counts 4 times, its unhelpful rows 0.
    np.testing.assert_allclose(weights, [4.0, 0.0, 0.0, 0.0, 1.0, 1.0, 1.0, 1.0, 2.0, 0.0])
    with pytest.raises(ValueError, match="best_group"):
        reweighing_weights(groups, outcomes, "median")


def test_counterfactual_training_reweighs_copies(tmp_path: Path) -> None:
    from hybrid_dialogue.fairness.mitigate import counterfactual_training, resample

    processed = write_named_processed(tmp_path / "processed", n_pairs=48)
    train = load_split(processed, "train")
    tokenizer = load_tokenizer(processed)
    outcomes = np.arange(len(train)) % 3 == 0

    data = counterfactual_training(train, default_swapper(), tokenizer, True, outcomes, "gender", "overall")
    plain = counterfactual_training(train, default_swapper(), tokenizer, True)
    drawn = resample(data, seed=0)

    train.frame["gender"] = ""
    no_groups = counterfactual_training(train, default_swapper(), tokenizer, True, outcomes, "gender")

    assert plain.weights is None
    assert no_groups.weights is None
    assert resample(plain, seed=0) is plain
    assert data.weights.shape == (len(data),)
    assert data.weights.mean() == pytest.approx(1.0)
    changed = data.has_counterfactual[: len(train)].astype(bool)
    np.testing.assert_allclose(data.weights[len(train):], data.weights[: len(train)][changed])
    assert len(drawn) == len(data)
    assert drawn.weights is None
    np.testing.assert_array_equal(resample(data, seed=0).input_ids, drawn.input_ids)


def test_resample_skips_zero_weight_rows() -> None:
    from hybrid_dialogue.fairness.mitigate import CounterfactualTraining, resample

    ids = np.arange(8, dtype=np.int32).reshape(4, 2)
    data = CounterfactualTraining(ids, ids + 10, ids + 20, np.ones(4, dtype=np.float32), 4, 0,
                                  weights=np.array([0.0, 2.0, 0.0, 2.0]))

    drawn = resample(data, seed=1)

    assert set(drawn.input_ids[:, 0].tolist()) == {2, 6}
    np.testing.assert_array_equal(drawn.response_ids, drawn.input_ids + 10)
    np.testing.assert_array_equal(drawn.counterfactual_ids, drawn.input_ids + 20)


def test_paired_difference_signs_by_group() -> None:
    from hybrid_dialogue.fairness.audit import paired_difference

    # Rows: message 0 (female original, male copy), message 1 (male original,
    # female copy, unknown-group copy).
    values = np.array([3.0, 1.0, 5.0, 6.0, 100.0])
    groups = np.array(["female", "male", "male", "female", ""])
    original_row = np.array([0, 0, 2, 2, 2])
    variants = np.array([False, True, False, True, True])

    # (3 - 1) and (6 - 5): female-signalling text minus male-signalling text.
    assert paired_difference(values, groups, original_row, variants) == pytest.approx(1.5)
    assert paired_difference(values, np.array(["male"] * 5), original_row, variants) is None


def test_invariance_weights_warm_up() -> None:
    from hybrid_dialogue.fairness.mitigate import invariance_weights

    weights = invariance_weights(InvarianceConfig(weight=2.0, warmup_fraction=0.5), total_steps=8)

    np.testing.assert_allclose(weights, [0.5, 1.0, 1.5, 2.0, 2.0, 2.0, 2.0, 2.0])
    np.testing.assert_allclose(invariance_weights(InvarianceConfig(weight=3.0, warmup_fraction=0.0), 3), [3.0] * 3)


def test_invariance_loss_zero_for_identical_messages(tmp_path: Path) -> None:
    import tensorflow as tf

    from hybrid_dialogue.fairness.mitigate import invariance_loss
    from hybrid_dialogue.models.io import build_model

    processed = write_named_processed(tmp_path / "processed", n_pairs=48)
    tokenizer = load_tokenizer(processed)
    model = build_model(tiny_model_config().architecture(tokenizer.vocab_size), tokenizer.fingerprint, seed=0)
    max_len = model.architecture.max_len
    original, _ = tokenizer.encode_batch(["hi, i'm maria. where is my order", "where is my order"], max_len)
    swapped, _ = tokenizer.encode_batch(["hi, i'm james. where is my order", "where is my order"], max_len)

    def batch(counterfactual: np.ndarray, mask: list[float]) -> dict[str, tf.Tensor]:
        return {"input_ids": tf.constant(original), "counterfactual_ids": tf.constant(counterfactual),
                "has_counterfactual": tf.constant(mask), "invariance_weight": tf.constant([2.0, 2.0])}

    assert float(invariance_loss(batch(original, [1.0, 1.0]), model)) == 0.0
    assert float(invariance_loss(batch(swapped, [1.0, 0.0]), model)) > 0.0
    assert float(invariance_loss(batch(swapped, [0.0, 0.0]), model)) == 0.0


def test_cli_bias_mitigation_missing_model(tmp_path: Path) -> None:
    from hybrid_dialogue.cli.main import cli

    processed = write_named_processed(tmp_path / "processed", n_pairs=48)
    result = CliRunner().invoke(cli, [
        "bias-mitigation", "--params", str(REPO_ROOT / "params.yaml"), "--processed-dir", str(processed),
        "--input", str(tmp_path / "missing.keras"), "--preset", "tiny",
    ])

    assert result.exit_code == 1
    assert "model file not found" in result.output
    assert "Traceback" not in result.output


def test_cli_bias_mitigation_unknown_key() -> None:
    import subprocess

    result = subprocess.run([CLI, "bias-mitigation", "--params", str(REPO_ROOT / "params.yaml"),
                             "--set", "invariance.wieght=2"], capture_output=True, text=True, timeout=120)

    assert result.returncode == 2
    assert "bias_mitigation.invariance.wieght: unknown key" in result.stderr
    assert "weight" in result.stderr


def test_mitigation_config_in_params_loads() -> None:
    config = load_section(BiasMitigationConfig, "bias_mitigation", REPO_ROOT / "params.yaml")

    assert config.attribute == "gender"
    assert config.finetune.budget_for("cpu").epochs >= 1


@pytest.mark.parametrize("section", ["bias_mitigation", "shap_analysis"])
def test_dvc_params_cover_every_key(section: str) -> None:
    """Every key of the section reruns the stage, except the budgets of presets other than the selected one."""
    import yaml

    from hybrid_dialogue.explanation.stage import ShapAnalysisConfig

    config_class = BiasMitigationConfig if section == "bias_mitigation" else ShapAnalysisConfig
    listed = yaml.safe_load((REPO_ROOT / "dvc.yaml").read_text(encoding="utf-8"))["stages"][section]["params"]
    keys = load_section(config_class, section, REPO_ROOT / "params.yaml").to_flat_dict(section)

    for key in keys:
        if ".budgets." in key:
            continue
        assert any(key == entry or key.startswith(entry + ".") for entry in listed), key
    if section == "bias_mitigation":
        assert "bias_mitigation.finetune.budgets.${model.preset}" in listed


def test_response_preference_matches_log_probs(tmp_path: Path) -> None:
    from hybrid_dialogue.fairness.audit import preference_yardsticks, response_preference
    from hybrid_dialogue.fairness.measure import ResolutionLexicon
    from hybrid_dialogue.models.io import build_model

    processed = write_named_processed(tmp_path / "processed", n_pairs=48)
    tokenizer = load_tokenizer(processed)
    model = build_model(tiny_model_config().architecture(tokenizer.vocab_size), tokenizer.fingerprint, seed=0)
    model.inference_jit_compile = False
    max_len = model.architecture.max_len
    train = load_split(processed, "train")
    unhelpful, helpful = preference_yardsticks(train.frame["agent_text"].tolist(), ResolutionLexicon.load(), tokenizer,
                                               max_len, count=2)
    messages, _ = tokenizer.encode_batch(["hi, i'm maria. where is my order", "i want a refund"], max_len)

    preference = response_preference(model, messages, unhelpful, helpful, batch_size=1)

    def log_mean_prob(candidates: np.ndarray) -> np.ndarray:
        log_probs = np.stack([model.response_log_prob(messages, np.repeat(row[None], len(messages), axis=0))
                              for row in candidates], axis=1).astype(np.float64)  # (messages, K)
        return np.log(np.exp(log_probs).mean(axis=1))

    assert unhelpful.shape == (2, max_len)
    assert helpful.shape == (2, max_len)
    np.testing.assert_allclose(preference, log_mean_prob(unhelpful) - log_mean_prob(helpful), rtol=1e-4, atol=1e-3)
