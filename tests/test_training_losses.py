"""Losses, diagnostics, schedules and configs of the training stages, on hand-computed values."""

from __future__ import annotations

import math

import numpy as np
import pytest
import tensorflow as tf

from hybrid_dialogue.config import ConfigError, parse_section
from hybrid_dialogue.training import losses
from hybrid_dialogue.training.config import (
    GanPretrainConfig,
    GumbelTemperature,
    HybridFinetuneConfig,
    KlAnnealing,
    VaePretrainConfig,
)
from hybrid_dialogue.training.schedules import gumbel_temperature, kl_weight

BUDGETS = {preset: {"epochs": 2, "steps_per_epoch": 3} for preset in ("seed", "cpu", "tiny")}


def one_hot_probabilities(ids: list[list[int]], vocab: int, confidence: float) -> np.ndarray:
    """Distributions that give `confidence` to each id and share the rest evenly."""
    rest = (1.0 - confidence) / (vocab - 1)
    probabilities = np.full((len(ids), len(ids[0]), vocab), rest, dtype=np.float32)
    for row, sequence in enumerate(ids):
        for step, token in enumerate(sequence):
            probabilities[row, step, token] = confidence
    return probabilities


def test_masked_cross_entropy_ignores_padding() -> None:
    # Row 0: two real tokens, each predicted with p = 0.5; row 1: one token with p = 0.25.
    targets = tf.constant([[5, 6, 0, 0], [7, 0, 0, 0]])
    probabilities = np.full((2, 4, 8), 1 / 8, dtype=np.float32)
    probabilities[0, 0] = probabilities[0, 1] = 0.5 / 7
    probabilities[0, 0, 5] = probabilities[0, 1, 6] = 0.5
    probabilities[1, 0] = 0.75 / 7
    probabilities[1, 0, 7] = 0.25

    loss = losses.masked_token_cross_entropy(targets, tf.constant(probabilities)).numpy()

    assert loss.shape == (2,)
    assert loss[0] == pytest.approx(-math.log(0.5), rel=1e-5)
    assert loss[1] == pytest.approx(-math.log(0.25), rel=1e-5)


def test_masked_cross_entropy_unchanged_by_padded_predictions() -> None:
    targets = tf.constant([[5, 6, 0, 0]])
    probabilities = one_hot_probabilities([[5, 6, 1, 1]], vocab=8, confidence=0.9)
    changed = probabilities.copy()
    changed[0, 2:] = one_hot_probabilities([[3, 3]], vocab=8, confidence=0.99)[0]

    original = losses.masked_token_cross_entropy(targets, tf.constant(probabilities)).numpy()
    after = losses.masked_token_cross_entropy(targets, tf.constant(changed)).numpy()

    assert after == pytest.approx(original)


def test_masked_cross_entropy_all_padding_is_zero() -> None:
    loss = losses.masked_token_cross_entropy(tf.zeros((1, 4), tf.int32), tf.fill((1, 4, 8), 0.125))
    assert loss.numpy()[0] == 0.0


def test_masked_token_accuracy() -> None:
    targets = tf.constant([[5, 6, 7, 0]])
    probabilities = one_hot_probabilities([[5, 6, 2, 2]], vocab=8, confidence=0.9)
    accuracy = losses.masked_token_accuracy(targets, tf.constant(probabilities)).numpy()
    assert accuracy[0] == pytest.approx(2 / 3)


def test_kl_of_standard_normal_is_zero() -> None:
    kl = losses.kl_divergence(tf.zeros((3, 4)), tf.zeros((3, 4))).numpy()
    np.testing.assert_allclose(kl, np.zeros(3), atol=1e-7)


def test_kl_matches_closed_form() -> None:
    # One dimension: KL(N(1, e^1) || N(0, 1)) = 0.5 * (e + 1 - 1 - 1) = 0.5 * (e - 1).
    kl = losses.kl_divergence(tf.constant([[1.0]]), tf.constant([[1.0]])).numpy()
    assert kl[0] == pytest.approx(0.5 * (math.e - 1.0), rel=1e-6)


def test_kl_sums_over_latent_dimensions() -> None:
    single = losses.kl_divergence(tf.constant([[2.0]]), tf.constant([[0.0]])).numpy()[0]
    triple = losses.kl_divergence(tf.constant([[2.0, 2.0, 2.0]]), tf.zeros((1, 3))).numpy()[0]
    assert single == pytest.approx(2.0)
    assert triple == pytest.approx(3 * single)


def test_discriminator_loss_one_sided_smoothing() -> None:
    real = tf.constant([[0.9]])
    fake = tf.constant([[0.2]])
    loss = losses.discriminator_loss(real, fake, label_smoothing=0.1).numpy()[0]
    expected_real = -(0.9 * math.log(0.9) + 0.1 * math.log(0.1))
    expected_fake = -math.log(0.8)
    assert loss == pytest.approx(expected_real + expected_fake, rel=1e-5)


def test_generator_adversarial_loss_is_non_saturating() -> None:
    loss = losses.generator_adversarial_loss(tf.constant([0.5, 0.01])).numpy()
    assert loss[0] == pytest.approx(math.log(2.0), rel=1e-5)
    assert loss[1] == pytest.approx(-math.log(0.01), rel=1e-5)


def test_score_accuracy_threshold() -> None:
    scores = tf.constant([[0.7], [0.4], [0.5]])
    np.testing.assert_array_equal(losses.score_accuracy(scores, real=True).numpy(), [1.0, 0.0, 0.0])
    np.testing.assert_array_equal(losses.score_accuracy(scores, real=False).numpy(), [0.0, 1.0, 1.0])


def test_distinct_n_counts_unique_ngrams() -> None:
    # Rows are [BOS] tokens [EOS] [PAD]; specials are left out.
    rows = np.array([[2, 10, 11, 12, 3, 0], [2, 10, 11, 13, 3, 0]])
    assert losses.distinct_n(rows, 1) == pytest.approx(4 / 6)
    assert losses.distinct_n(rows, 2) == pytest.approx(3 / 4)


def test_distinct_n_of_collapsed_batch() -> None:
    rows = np.array([[2, 10, 10, 10, 3]] * 4)
    assert losses.distinct_n(rows, 1) == pytest.approx(1 / 12)
    assert losses.distinct_n(np.array([[2, 3, 0]]), 2) == 0.0


def test_distinct_n_stops_at_first_eos() -> None:
    rows = np.array([[2, 10, 3, 11, 12]])
    assert losses.content_tokens(rows[0]) == [10]
    assert losses.distinct_n(rows, 1) == 1.0


def test_distinct_n_rejects_zero() -> None:
    with pytest.raises(ValueError, match="n must be >= 1"):
        losses.distinct_n([[2, 3]], 0)


def test_active_units_counts_varying_dimensions() -> None:
    rng = np.random.default_rng(0)
    z_means = np.stack([rng.normal(0, 1, 500), rng.normal(0, 0.05, 500), np.full(500, 3.0)], axis=1)
    assert losses.active_units(z_means) == 1


def test_active_units_rejects_one_example() -> None:
    with pytest.raises(ValueError, match="examples >= 2"):
        losses.active_units(np.zeros((1, 4)))


@pytest.mark.parametrize(
    ("step", "expected"),
    [(0, 0.0), (25, 0.05), (50, 0.1), (75, 0.1), (99, 0.1)],
)
def test_linear_kl_annealing(step: int, expected: float) -> None:
    annealing = KlAnnealing(schedule="linear", weight=0.1, warmup_fraction=0.5)
    assert kl_weight(step, 100, annealing) == pytest.approx(expected)


@pytest.mark.parametrize(
    ("step", "expected"),
    # 4 cycles of 25 steps; the weight rises over the first 12.5 steps of each.
    [(0, 0.0), (5, 0.4), (12, 0.96), (13, 1.0), (24, 1.0), (25, 0.0), (30, 0.4), (99, 1.0)],
)
def test_cyclical_kl_annealing(step: int, expected: float) -> None:
    annealing = KlAnnealing(schedule="cyclical", weight=1.0, warmup_fraction=0.5, cycles=4)
    assert kl_weight(step, 100, annealing) == pytest.approx(expected)


def test_constant_kl_weight() -> None:
    annealing = KlAnnealing(schedule="constant", weight=0.3)
    assert kl_weight(0, 100, annealing) == 0.3
    assert kl_weight(99, 100, annealing) == 0.3


def test_gumbel_temperature_decays_geometrically() -> None:
    temperature = GumbelTemperature(start=1.0, end=0.25)
    assert gumbel_temperature(0, 3, temperature) == pytest.approx(1.0)
    assert gumbel_temperature(1, 3, temperature) == pytest.approx(0.5)
    assert gumbel_temperature(2, 3, temperature) == pytest.approx(0.25)
    assert gumbel_temperature(0, 1, temperature) == pytest.approx(0.25)


def test_gan_budget_needs_adversarial_epoch() -> None:
    budgets = {preset: {"epochs": 2, "warmup_epochs": 2} for preset in ("seed", "cpu", "tiny")}
    with pytest.raises(ConfigError, match=r"warmup_epochs \(2\) must be smaller than epochs \(2\)"):
        parse_section(GanPretrainConfig, "gan_pretrain", {"budgets": budgets})


def test_config_rejects_unknown_preset_budget() -> None:
    budgets = {**BUDGETS, "cpuu": {"epochs": 1}}
    with pytest.raises(ConfigError, match=r"vae_pretrain\.budgets\.cpuu: unknown key"):
        parse_section(VaePretrainConfig, "vae_pretrain", {"budgets": budgets})


def test_config_rejects_out_of_range_rate() -> None:
    with pytest.raises(ConfigError, match=r"vae_pretrain\.learning_rate = 5 is invalid"):
        parse_section(VaePretrainConfig, "vae_pretrain", {"budgets": BUDGETS, "learning_rate": 5})


def test_repository_params_parse(repo_root) -> None:  # noqa: ANN001
    from hybrid_dialogue.config import load_section

    params = repo_root / "params.yaml"
    vae = load_section(VaePretrainConfig, "vae_pretrain", params)
    gan = load_section(GanPretrainConfig, "gan_pretrain", params)
    hybrid = load_section(HybridFinetuneConfig, "hybrid_finetune", params)
    assert gan.generator_learning_rate == 2e-4
    assert gan.discriminator_learning_rate == 2e-4
    assert gan.beta_1 == 0.5
    assert gan.batch_size == 64
    assert gan.budget_for("cpu").warmup_epochs < gan.budget_for("cpu").epochs
    # The repository's cpu recipe trains the hybrid stage faster than the design's 1e-4 (see params.yaml).
    assert hybrid.learning_rate == 1e-3
    assert hybrid.discriminator_learning_rate == 1e-4
    assert vae.budget_for("tiny").epochs >= 1


def test_config_defaults_follow_design() -> None:
    gan = parse_section(GanPretrainConfig, "gan_pretrain", {"budgets": BUDGETS})
    hybrid = parse_section(HybridFinetuneConfig, "hybrid_finetune", {"budgets": BUDGETS})
    assert (gan.generator_learning_rate, gan.discriminator_learning_rate, gan.beta_1) == (2e-4, 2e-4, 0.5)
    assert gan.batch_size == 64
    assert hybrid.learning_rate == 1e-4
    assert hybrid.loss_weights.model_dump() == {"reconstruction": 1.0, "kl": 0.1, "adversarial": 1.0, "content": 0.5}


def test_preset_budget_overrides_batch_size() -> None:
    budgets = {**BUDGETS, "cpu": {"epochs": 1, "batch_size": 128}}
    config = parse_section(VaePretrainConfig, "vae_pretrain", {"batch_size": 64, "budgets": budgets})
    assert config.for_preset("cpu").batch_size == 128
    assert config.for_preset("tiny").batch_size == 64


def test_bfloat16_warning_on_cpu_without_bf16(tmp_path, caplog) -> None:  # noqa: ANN001
    from hybrid_dialogue.training.runtime import warn_if_bfloat16_is_emulated

    without = tmp_path / "without"
    without.write_text("processor : 0\nflags : fpu sse2 avx2 avx512f\n")
    with_bf16 = tmp_path / "with"
    with_bf16.write_text("processor : 0\nflags : fpu sse2 avx2 avx512f avx512_bf16\n")

    warn_if_bfloat16_is_emulated("bfloat16", with_bf16)
    warn_if_bfloat16_is_emulated("none", without)
    assert "no bfloat16 instructions" not in caplog.text
    warn_if_bfloat16_is_emulated("bfloat16", without)
    assert "no bfloat16 instructions" in caplog.text


@pytest.mark.parametrize("deterministic", [False, True])
def test_determinism_turns_grappler_off(deterministic: bool) -> None:
    # A fresh interpreter, because op determinism cannot be turned off again in this one.
    import subprocess
    import sys

    code = (
        "import tensorflow as tf\n"
        "from hybrid_dialogue.training.runtime import seed_everything\n"
        f"seed_everything(3, {deterministic})\n"
        "print(tf.config.optimizer.get_experimental_options().get('disable_meta_optimizer', False))\n"
    )
    completed = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert completed.stdout.split()[-1] == str(deterministic)


def test_free_bits_floor_per_dimension() -> None:
    # Dimension 0 has KL 2.0 in every row, dimension 1 has KL 0 (standard normal).
    z_mean = tf.constant([[2.0, 0.0], [-2.0, 0.0]])
    z_log_var = tf.zeros((2, 2))
    assert float(losses.free_bits_kl(z_mean, z_log_var, 0.0)) == pytest.approx(2.0)
    assert float(losses.free_bits_kl(z_mean, z_log_var, 0.5)) == pytest.approx(2.5)
    assert float(losses.free_bits_kl(z_mean, z_log_var, 3.0)) == pytest.approx(6.0)


def test_free_bits_blocks_gradient_below_floor() -> None:
    z_mean = tf.Variable([[0.1, 3.0]])
    with tf.GradientTape() as tape:
        kl = losses.free_bits_kl(z_mean, tf.zeros((1, 2)), 1.0)
    gradient = tape.gradient(kl, z_mean).numpy()
    assert gradient[0, 0] == 0.0
    assert gradient[0, 1] == pytest.approx(3.0)
