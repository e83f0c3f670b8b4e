"""Tests of the hybrid model: sizes, shapes, gradients, serialisation and config errors."""

from __future__ import annotations

from pathlib import Path

import keras
import numpy as np
import pytest
import tensorflow as tf

from hybrid_dialogue.config import ConfigError
from hybrid_dialogue.data.tokenizer import BOS_ID, EOS_ID, PAD_ID, TextTokenizer
from hybrid_dialogue.models.config import ModelConfig, load_model_config
from hybrid_dialogue.models.decoding import decode_ids
from hybrid_dialogue.models.hybrid import HybridDialogueModel, dtype_policy_scope
from hybrid_dialogue.models.io import (
    ModelFileError,
    TokenizerMismatchError,
    build_model,
    check_tokenizer,
    load_model,
    save_model,
)
from hybrid_dialogue.models.layers import DistributionEmbedding, GumbelSoftmax

PARAMS = Path(__file__).resolve().parents[1] / "params.yaml"

# Parameter counts of the reference design (vocabulary 154, length 100, latent 256).
SEED_PARAMETERS = {
    "encoder": 6_055_680,
    "decoder": 4_408_986,
    "generator": 5_423_770,
    "discriminator": 1_507_329,
}
SEED_TOTAL = 17_395_765
PARTS = tuple(SEED_PARAMETERS)

SENTENCES = [
    "where is my order",
    "i want a refund for my order",
    "my card was charged twice",
    "please cancel my subscription",
    "the parcel arrived damaged",
    "how do i change my delivery address",
    "your order has shipped and arrives tomorrow",
    "we have issued a refund to your card",
    "i have cancelled your subscription",
    "sorry about the damaged parcel, a replacement is on its way",
]


@pytest.fixture(scope="module")
def model_config() -> ModelConfig:
    return load_model_config(PARAMS, {"preset": "tiny"})


@pytest.fixture(scope="module")
def tokenizer() -> TextTokenizer:
    return TextTokenizer.fit(SENTENCES * 3, vocab_size=80)


@pytest.fixture(scope="module")
def tiny_model(model_config, tokenizer) -> HybridDialogueModel:
    model = build_model(model_config.architecture(tokenizer.vocab_size), tokenizer.fingerprint, seed=7)
    # XLA compilation takes seconds per batch shape; one test covers it below.
    model.inference_jit_compile = False
    return model


@pytest.fixture(scope="module")
def input_ids(model_config, tokenizer) -> np.ndarray:
    ids, _ = tokenizer.encode_batch(SENTENCES[:5], model_config.sizes.max_len)
    return ids


# --- sizes ---


@pytest.fixture(scope="module")
def seed_model() -> HybridDialogueModel:
    config = load_model_config(PARAMS, {"preset": "seed"})
    return build_model(config.architecture(154), "seed-test")


@pytest.mark.parametrize("part", PARTS)
def test_seed_part_parameter_count(seed_model, part):
    assert getattr(seed_model, part).count_params() == SEED_PARAMETERS[part]


def test_seed_total_parameter_count(seed_model):
    assert sum(getattr(seed_model, part).count_params() for part in PARTS) == SEED_TOTAL
    trainable = sum(int(np.prod(weight.shape)) for weight in seed_model.trainable_weights)
    assert trainable == SEED_TOTAL
    # The only weight outside the four parts is the Gumbel temperature.
    assert seed_model.count_params() == SEED_TOTAL + 1


def test_distribution_embedding_matches_embedding_size():
    distribution_embedding = DistributionEmbedding(154, 128)
    distribution_embedding.build((None, 100, 154))
    embedding = keras.layers.Embedding(154, 128)
    embedding.build((None, 100))
    assert distribution_embedding.count_params() == embedding.count_params() == 154 * 128


# --- shapes and values ---


def test_tiny_output_shapes(tiny_model, input_ids):
    arch = tiny_model.architecture
    batch = len(input_ids)
    z_mean, z_log_var, z = tiny_model.encode(input_ids)
    assert tuple(z_mean.shape) == (batch, arch.latent_dim)
    assert tuple(z_log_var.shape) == (batch, arch.latent_dim)
    assert tuple(z.shape) == (batch, arch.latent_dim)
    assert tuple(tiny_model.generate(z).shape) == (batch, arch.max_len, arch.vocab_size)
    assert tuple(tiny_model.reconstruct(input_ids).shape) == (batch, arch.max_len, arch.vocab_size)
    assert tuple(tiny_model.score(input_ids).shape) == (batch,)

    outputs = tiny_model(input_ids, training=False)
    assert tuple(outputs["reconstruction"].shape) == (batch, arch.max_len, arch.vocab_size)
    assert tuple(outputs["response"].shape) == (batch, arch.max_len, arch.vocab_size)
    assert tuple(outputs["quality"].shape) == (batch, 1)


def test_respond_shapes_and_dtypes(tiny_model, input_ids):
    outputs = tiny_model.respond(input_ids)
    max_len = tiny_model.architecture.max_len
    assert outputs["response_ids"].shape == (len(input_ids), max_len)
    assert outputs["response_ids"].dtype == np.int32
    assert outputs["reconstructed_ids"].shape == (len(input_ids), max_len)
    assert outputs["reconstructed_ids"].dtype == np.int32
    assert outputs["quality"].shape == (len(input_ids),)
    assert outputs["quality"].dtype == np.float32


def test_respond_empty_batch(tiny_model):
    outputs = tiny_model.respond(np.zeros((0, tiny_model.architecture.max_len), dtype=np.int32))
    assert outputs["response_ids"].shape == (0, tiny_model.architecture.max_len)
    assert outputs["quality"].shape == (0,)


def test_probabilities_sum_to_one(tiny_model, input_ids):
    z_mean, _, _ = tiny_model.encode(input_ids)
    for probabilities in (tiny_model.generate(z_mean), tiny_model.reconstruct(input_ids)):
        np.testing.assert_allclose(np.sum(probabilities, axis=-1), 1.0, rtol=1e-5)


@pytest.mark.parametrize("kind", ["ids", "distributions", "respond"])
def test_score_in_unit_interval(tiny_model, input_ids, kind):
    if kind == "ids":
        scores = np.asarray(tiny_model.score(input_ids))
    elif kind == "distributions":
        z = tiny_model.encode(input_ids)[2]
        scores = np.asarray(tiny_model.score(tiny_model.generate(z)))
    else:
        scores = tiny_model.respond(input_ids)["quality"]
    assert np.all(scores >= 0.0)
    assert np.all(scores <= 1.0)


def test_score_of_ids_equals_score_of_one_hot(tiny_model, input_ids):
    one_hot = np.eye(tiny_model.architecture.vocab_size, dtype=np.float32)[input_ids]
    np.testing.assert_allclose(tiny_model.score(input_ids), tiny_model.score(one_hot), rtol=1e-5, atol=1e-6)


def test_discriminator_stacked_batch_matches_separate(tiny_model, input_ids):
    # The discriminator update scores real and fake rows as one stacked batch
    # (training.gan.update_discriminator), which is only sound if rows do not interact.
    vocab = tiny_model.architecture.vocab_size
    real = np.eye(vocab, dtype=np.float32)[input_ids]
    fake = np.asarray(tiny_model.generate(tiny_model.encode(input_ids)[0]))
    stacked = np.asarray(tiny_model.discriminator(np.concatenate([real, fake]), training=False))
    separate = np.concatenate([tiny_model.discriminator(real, training=False), tiny_model.discriminator(fake, training=False)])
    np.testing.assert_allclose(stacked, separate, rtol=1e-5, atol=1e-6)


def test_respond_quality_scores_returned_response(tiny_model, input_ids):
    outputs = tiny_model.respond(input_ids)
    np.testing.assert_allclose(outputs["quality"], tiny_model.score(outputs["response_ids"]), rtol=1e-4, atol=1e-5)


def test_respond_deterministic(tiny_model, input_ids):
    first = tiny_model.respond(input_ids)
    second = tiny_model.respond(input_ids)
    for key in first:
        np.testing.assert_array_equal(first[key], second[key])


def test_inference_leaves_random_state_alone(tiny_model, input_ids):
    # Training reads the seed generators next, so inference must not move them.
    before = [variable.numpy().copy() for variable in tiny_model.non_trainable_variables]

    tiny_model.respond(input_ids)
    tiny_model.response_log_prob(input_ids, input_ids)

    for saved, variable in zip(before, tiny_model.non_trainable_variables, strict=True):
        np.testing.assert_array_equal(variable.numpy(), saved, err_msg=variable.path)


def test_respond_same_across_batch_sizes(tiny_model, input_ids):
    whole = tiny_model.respond(input_ids)
    chunked = tiny_model.respond(input_ids, batch_size=2)
    np.testing.assert_array_equal(whole["response_ids"], chunked["response_ids"])
    np.testing.assert_array_equal(whole["reconstructed_ids"], chunked["reconstructed_ids"])
    np.testing.assert_allclose(whole["quality"], chunked["quality"], rtol=1e-5, atol=1e-6)


def test_xla_matches_plain_graph(tiny_model, input_ids):
    input_ids = input_ids[:3]  # XLA runs chunks of up to 4 rows, padding these 3 to 4
    plain = tiny_model.respond(input_ids)
    plain_log_prob = tiny_model.response_log_prob(input_ids, input_ids)
    tiny_model.inference_jit_compile = True
    try:
        compiled = tiny_model.respond(input_ids)
        compiled_log_prob = tiny_model.response_log_prob(input_ids, input_ids)
    finally:
        tiny_model.inference_jit_compile = False
    np.testing.assert_array_equal(plain["response_ids"], compiled["response_ids"])
    np.testing.assert_array_equal(plain["reconstructed_ids"], compiled["reconstructed_ids"])
    np.testing.assert_allclose(plain["quality"], compiled["quality"], rtol=1e-4, atol=1e-5)
    np.testing.assert_allclose(plain_log_prob, compiled_log_prob, rtol=1e-4)


def test_same_seed_same_weights(model_config, tokenizer):
    arch = model_config.architecture(tokenizer.vocab_size)
    first = build_model(arch, tokenizer.fingerprint, seed=3)
    second = build_model(arch, tokenizer.fingerprint, seed=3)
    third = build_model(arch, tokenizer.fingerprint, seed=4)
    for left, right in zip(first.get_weights(), second.get_weights(), strict=True):
        np.testing.assert_array_equal(left, right)
    assert not np.array_equal(first.encoder.get_weights()[0], third.encoder.get_weights()[0])


def _step(vocab: dict[int, float]) -> list[float]:
    """One step's distribution over a 6-token vocabulary; ids not in `vocab` share what is left."""
    rest = (1.0 - sum(vocab.values())) / (6 - len(vocab))
    return [vocab.get(token, rest) for token in range(6)]


def test_decode_ids_cuts_where_end_is_likely():
    # [EOS] hazards 0.1, 0.2, 0.6 at steps 1-3: P(ended) is 0.1, 0.28, 0.712,
    # so the text ends at step 3 (END_PROBABILITY 0.7), although [EOS] is the
    # argmax of no step before it. Word 4 wins steps 1 and 2.
    probabilities = np.array(
        [
            [
                _step({BOS_ID: 1.0}),
                _step({EOS_ID: 0.1, 4: 0.5}),
                _step({EOS_ID: 0.2, 4: 0.5}),
                _step({EOS_ID: 0.6, 5: 0.3}),
                _step({EOS_ID: 0.9}),
            ]
        ],
        dtype=np.float32,
    )
    np.testing.assert_array_equal(decode_ids(probabilities), [[BOS_ID, 4, 4, EOS_ID, PAD_ID]])


def test_decode_ids_without_likely_end():
    # Hazard 0.1 at every step: P(ended by step 4) = 1 - 0.9**4 = 0.34 < 0.7, so no [EOS].
    probabilities = np.array(
        [[_step({BOS_ID: 1.0})] + [_step({EOS_ID: 0.1, PAD_ID: 0.0, 4: 0.6})] * 4], dtype=np.float32
    )
    np.testing.assert_array_equal(decode_ids(probabilities), [[BOS_ID, 4, 4, 4, 4]])


def test_decode_ids_never_emits_pad_before_the_end():
    probabilities = np.array([[_step({BOS_ID: 1.0}), _step({PAD_ID: 0.9, 5: 0.05}), _step({EOS_ID: 0.9})]], dtype=np.float32)
    np.testing.assert_array_equal(decode_ids(probabilities), [[BOS_ID, 5, EOS_ID]])


def test_response_log_prob_matches_manual_sum(tiny_model, input_ids):
    response_ids = np.roll(input_ids, 1, axis=0)
    log_prob = tiny_model.response_log_prob(input_ids, response_ids)

    z_mean, _, _ = tiny_model.encode(input_ids)
    probabilities = np.asarray(tiny_model.generate(z_mean))
    token_probabilities = np.take_along_axis(probabilities, response_ids[..., None], axis=-1)[..., 0]
    expected = np.sum(np.log(token_probabilities) * (response_ids != PAD_ID), axis=-1)
    assert log_prob.shape == (len(input_ids),)
    np.testing.assert_allclose(log_prob, expected, rtol=1e-4)


def test_response_log_prob_ignores_padding_steps(tiny_model, input_ids):
    response_ids = input_ids.copy()
    only_bos = np.full_like(response_ids, PAD_ID)
    only_bos[:, 0] = BOS_ID
    full = tiny_model.response_log_prob(input_ids, response_ids)
    first_token = tiny_model.response_log_prob(input_ids, only_bos)
    assert np.all(full < first_token)  # more tokens, more negative log-probability terms
    assert np.all(first_token < 0)


@pytest.mark.parametrize(
    ("ids", "message"),
    [
        (np.zeros((2, 3), dtype=np.int32), r"must have shape \(batch, 16\)"),
        (np.zeros((16,), dtype=np.int32), r"must have shape \(batch, 16\)"),
        (np.full((2, 16), 10_000, dtype=np.int32), r"token ids outside \[0, "),
        (np.full((2, 16), -1, dtype=np.int32), r"token ids outside \[0, "),
        (np.zeros((2, 16), dtype=np.float32), "must contain integer token ids"),
    ],
)
def test_respond_rejects_invalid_ids(tiny_model, ids, message):
    with pytest.raises(ValueError, match=message):
        tiny_model.respond(ids)


def test_respond_rejects_zero_batch_size(tiny_model, input_ids):
    with pytest.raises(ValueError, match="batch_size must be at least 1"):
        tiny_model.respond(input_ids, batch_size=0)


def test_response_log_prob_rejects_row_mismatch(tiny_model, input_ids):
    with pytest.raises(ValueError, match="one response per message"):
        tiny_model.response_log_prob(input_ids, input_ids[:2])


# --- layers ---


def test_distribution_embedding_ids_equal_one_hot():
    layer = DistributionEmbedding(11, 4)
    ids = np.array([[0, 3, 10], [5, 5, 1]], dtype=np.int32)
    one_hot = np.eye(11, dtype=np.float32)[ids]  # (2, 3, 11)
    from_ids = np.asarray(layer(ids))
    np.testing.assert_allclose(from_ids, np.asarray(layer(one_hot)), rtol=1e-6)
    assert from_ids.shape == (2, 3, 4)


def test_distribution_embedding_mixes_rows():
    layer = DistributionEmbedding(3, 2)
    layer.build(None)
    layer.embeddings.assign(np.array([[1.0, 0.0], [0.0, 1.0], [2.0, 2.0]], dtype=np.float32))
    mixed = np.array([[[0.5, 0.5, 0.0], [0.0, 0.25, 0.75]]], dtype=np.float32)
    np.testing.assert_allclose(layer(mixed), [[[0.5, 0.5], [1.5, 1.75]]], rtol=1e-6)


def test_distribution_embedding_rejects_wrong_vocabulary():
    layer = DistributionEmbedding(11, 4)
    with pytest.raises(ValueError, match="distributions over 11 tokens"):
        layer(np.ones((1, 3, 12), dtype=np.float32))


def _mean_max_probability(layer: GumbelSoftmax, probabilities: np.ndarray) -> float:
    return float(np.mean(np.max(np.asarray(layer(probabilities, training=False)), axis=-1)))


def test_gumbel_temperature_changes_sharpness():
    probabilities = np.array([[[0.5, 0.3, 0.2], [0.1, 0.6, 0.3]]], dtype=np.float32)
    layer = GumbelSoftmax(temperature=1.0, seed=1)
    np.testing.assert_allclose(layer(probabilities, training=False), probabilities, rtol=1e-5)

    layer.set_temperature(0.1)
    sharp = _mean_max_probability(layer, probabilities)
    layer.set_temperature(5.0)
    flat = _mean_max_probability(layer, probabilities)
    assert float(layer.temperature.numpy()) == pytest.approx(5.0)
    assert sharp > 0.95
    assert flat < 0.4
    assert sharp > _mean_max_probability(GumbelSoftmax(1.0), probabilities) > flat


def test_gumbel_training_samples_are_distributions():
    probabilities = np.full((4, 6, 5), 0.2, dtype=np.float32)
    layer = GumbelSoftmax(temperature=0.5, seed=3)
    samples = np.asarray(layer(probabilities, training=True))
    np.testing.assert_allclose(samples.sum(axis=-1), 1.0, rtol=1e-5)
    assert not np.allclose(samples, probabilities)  # the noise moved them


def test_gumbel_hard_is_one_hot():
    probabilities = np.array([[[0.5, 0.3, 0.2]]], dtype=np.float32)
    samples = np.asarray(GumbelSoftmax(temperature=1.0, hard=True, seed=1)(probabilities, training=True))
    assert sorted(samples.ravel().tolist()) == pytest.approx([0.0, 0.0, 1.0])


@pytest.mark.parametrize("temperature", [0.0, -1.0])
def test_gumbel_rejects_non_positive_temperature(temperature):
    with pytest.raises(ValueError, match="temperature must be positive"):
        GumbelSoftmax(temperature)
    with pytest.raises(ValueError, match="temperature must be positive"):
        GumbelSoftmax(1.0).set_temperature(temperature)


@pytest.mark.parametrize("hard", [False, True])
def test_adversarial_gradient_reaches_generator(tiny_model, input_ids, hard):
    tiny_model.gumbel.hard = hard
    try:
        with tf.GradientTape() as tape:
            z = tiny_model.encode(input_ids, training=True)[2]
            samples = tiny_model.sample_distributions(z, training=True)
            loss = tf.reduce_mean(tiny_model.score(samples, training=True))
        gradients = tape.gradient(loss, tiny_model.generator.trainable_weights)
    finally:
        tiny_model.gumbel.hard = False

    for weight, gradient in zip(tiny_model.generator.trainable_weights, gradients, strict=True):
        assert gradient is not None, weight.path
        assert float(tf.norm(gradient)) > 0.0, weight.path


# --- precision ---


@pytest.mark.parametrize("mixed_precision", ["bfloat16", "float16"])
def test_mixed_precision_outputs_float32(model_config, tokenizer, input_ids, mixed_precision):
    model = build_model(
        model_config.architecture(tokenizer.vocab_size), tokenizer.fingerprint, mixed_precision=mixed_precision
    )
    model.inference_jit_compile = False
    assert keras.mixed_precision.dtype_policy().name == "float32"  # the global policy is restored
    assert model.generator.get_layer("lstm_1").compute_dtype == mixed_precision
    assert model.generator.get_layer("lstm_1").variable_dtype == "float32"

    outputs = model(input_ids, training=True)
    for key in ("z_mean", "reconstruction", "response", "quality"):
        assert outputs[key].dtype == "float32", key
    quality = model.respond(input_ids)["quality"]
    assert np.all((quality >= 0) & (quality <= 1))


def test_dtype_policy_scope_rejects_unknown_precision():
    with pytest.raises(ValueError, match="unknown mixed_precision 'int8'"):
        with dtype_policy_scope("int8"):
            pass


# --- save and load ---


def test_load_builds_layers_outside_keras_object_sharing(tiny_model, tokenizer, tmp_path, monkeypatch):
    # Inside Keras's object-sharing scope, Bidirectional matches its inner LSTM
    # by id(), and a reused id made loads fail now and then with "Forward layer
    # and backward layer should have different `go_backwards` value".
    # load_model must never enter that scope.
    from keras.src.saving import serialization_lib

    path = tmp_path / "tiny.keras"
    save_model(tiny_model, path)

    def refuse(*args):
        raise AssertionError("load_model entered Keras's object-sharing scope")

    monkeypatch.setattr(serialization_lib.ObjectSharingScope, "__enter__", refuse)
    loaded = load_model(path, tokenizer=tokenizer)

    for original, restored in zip(tiny_model.weights, loaded.weights, strict=True):
        np.testing.assert_array_equal(original.numpy(), restored.numpy(), err_msg=original.path)


def test_save_load_round_trip(tiny_model, tokenizer, input_ids, tmp_path):
    tiny_model.set_gumbel_temperature(0.25)
    path = tmp_path / "models" / "tiny.keras"
    try:
        save_model(tiny_model, path)
    finally:
        tiny_model.set_gumbel_temperature(1.0)
    loaded = load_model(path, tokenizer=tokenizer)
    loaded.inference_jit_compile = False

    assert isinstance(loaded, HybridDialogueModel)
    assert loaded.architecture == tiny_model.architecture
    assert loaded.tokenizer_fingerprint == tokenizer.fingerprint
    assert float(loaded.gumbel.temperature.numpy()) == pytest.approx(0.25)
    assert [weight.path for weight in loaded.weights] == [weight.path for weight in tiny_model.weights]
    for original, restored in zip(tiny_model.weights, loaded.weights, strict=True):
        if original.path.endswith("temperature"):
            continue
        np.testing.assert_array_equal(original.numpy(), restored.numpy(), err_msg=original.path)

    expected = tiny_model.respond(input_ids)
    actual = loaded.respond(input_ids)
    for key in expected:
        np.testing.assert_array_equal(expected[key], actual[key])
    np.testing.assert_array_equal(
        tiny_model.response_log_prob(input_ids, input_ids), loaded.response_log_prob(input_ids, input_ids)
    )
    assert list(tmp_path.joinpath("models").iterdir()) == [path]  # no temporary files left


def test_get_config_stores_architecture(tiny_model, tokenizer):
    config = tiny_model.get_config()
    assert config["architecture"] == tiny_model.architecture.to_dict()
    assert config["architecture"]["vocab_size"] == tokenizer.vocab_size
    assert config["tokenizer_fingerprint"] == tokenizer.fingerprint
    rebuilt = HybridDialogueModel.from_config(config)
    assert rebuilt.count_params() == tiny_model.count_params()


def test_load_rejects_other_tokenizer(tiny_model, tmp_path):
    path = tmp_path / "tiny.keras"
    save_model(tiny_model, path)
    other = TextTokenizer.fit(["completely different words here"] * 5, vocab_size=40)
    with pytest.raises(TokenizerMismatchError, match=r"tokenizer mismatch: .*tiny\.keras was built for"):
        load_model(path, tokenizer=other)


def test_check_tokenizer_names_both_fingerprints(tiny_model, tokenizer):
    other = TextTokenizer.fit(["completely different words here"] * 5, vocab_size=40)
    with pytest.raises(TokenizerMismatchError) as raised:
        check_tokenizer(tiny_model, other)
    assert tokenizer.fingerprint in str(raised.value)
    assert other.fingerprint in str(raised.value)
    check_tokenizer(tiny_model, tokenizer)  # the matching tokenizer passes


def test_load_missing_file(tmp_path):
    with pytest.raises(ModelFileError, match="model file not found"):
        load_model(tmp_path / "absent.keras")


def test_load_corrupt_file(tmp_path):
    path = tmp_path / "corrupt.keras"
    path.write_bytes(b"not a zip archive")
    with pytest.raises(ModelFileError, match="not a valid .keras file"):
        load_model(path)


def test_load_truncated_file(tiny_model, tmp_path):
    path = tmp_path / "tiny.keras"
    save_model(tiny_model, path)
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])
    with pytest.raises(ModelFileError, match="not a valid .keras file|failed to load model"):
        load_model(path)


def test_load_rejects_other_model_kind(tmp_path):
    path = tmp_path / "plain.keras"
    inputs = keras.Input((3,))
    keras.Model(inputs, keras.layers.Dense(1)(inputs)).save(path)
    with pytest.raises(ModelFileError, match="contains a Functional, expected a HybridDialogueModel"):
        load_model(path)


def test_save_rejects_other_suffix(tiny_model, tmp_path):
    with pytest.raises(ModelFileError, match="must end with .keras"):
        save_model(tiny_model, tmp_path / "model.h5")


# --- config ---


def test_unknown_preset_rejected():
    with pytest.raises(ConfigError, match=r"model\.preset = 'huge' is invalid"):
        load_model_config(PARAMS, {"preset": "huge"})


@pytest.mark.parametrize(
    ("key", "value", "message"),
    [
        ("presets.tiny.latent_dim", 0, r"model\.presets\.tiny\.latent_dim = 0 is invalid.*>= 1"),
        ("presets.cpu.encoder_units", 100_000, r"model\.presets\.cpu\.encoder_units = 100000 .*<= 8192"),
        ("presets.tiny.max_len", 2, r"model\.presets\.tiny\.max_len = 2 is invalid.*>= 3"),
        ("presets.tiny.dropout", 1.0, r"model\.presets\.tiny\.dropout = 1\.0 is invalid.*< 1\.0"),
        ("presets.tiny.discriminator_dense_units", [8, 0], r"each width must be between 1 and 8192, got 0"),
        ("presets.tiny.discriminator_dense_units", [], r"discriminator_dense_units"),
        ("mixed_precision", "int8", r"model\.mixed_precision = 'int8' is invalid"),
        ("presets.tiny.hidden_units", 4, r"model\.presets\.tiny\.hidden_units: unknown key"),
    ],
)
def test_invalid_sizes_rejected(key, value, message):
    with pytest.raises(ConfigError, match=message):
        load_model_config(PARAMS, {key: value})


def test_vocabulary_too_small_rejected(model_config):
    with pytest.raises(ConfigError, match=r"vocab_size = 3 is invalid.*>= 5"):
        model_config.architecture(3)


def test_default_preset_is_cpu():
    config = load_model_config(PARAMS)
    assert config.preset == "cpu"
    assert config.sizes == config.presets.cpu
    assert config.dtype_policy == "float32"


def test_jit_compile_default_without_gpu(model_config, tokenizer):
    model = build_model(model_config.architecture(tokenizer.vocab_size), tokenizer.fingerprint)
    assert model.inference_jit_compile == (not tf.config.list_physical_devices("GPU"))
    model.inference_jit_compile = False
    assert model.inference_jit_compile is False
