"""The `preprocess` section of params.yaml: defaults, the repository's values, and error messages."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from hybrid_dialogue.config import ConfigError, load_section, parse_section
from hybrid_dialogue.data.preprocess import SECTION, PreprocessConfig


def _write_params(tmp_path: Path, section: dict) -> Path:
    path = tmp_path / "params.yaml"
    path.write_text(yaml.safe_dump({SECTION: section}), encoding="utf-8")
    return path


def test_defaults() -> None:
    config = PreprocessConfig()
    assert config.vocab_size == 2000
    assert config.max_len == 100
    assert config.text.redact == ("email", "card", "phone", "address")


def test_repository_params_load(repo_root: Path) -> None:
    config = load_section(PreprocessConfig, SECTION, repo_root / "params.yaml")
    assert config.max_len == 40  # the cpu model preset's length


def test_repository_params_match_model_preset(repo_root: Path) -> None:
    params = yaml.safe_load((repo_root / "params.yaml").read_text(encoding="utf-8"))
    preset = params["model"]["preset"]
    assert params[SECTION]["max_len"] == params["model"]["presets"][preset]["max_len"]


def test_dvc_params_list_every_key(repo_root: Path) -> None:
    stage = yaml.safe_load((repo_root / "dvc.yaml").read_text(encoding="utf-8"))["stages"][SECTION]
    listed = set(stage["params"])
    expected = set(PreprocessConfig().to_flat_dict(SECTION))
    assert listed == expected


def test_unknown_key_named(tmp_path: Path) -> None:
    path = _write_params(tmp_path, {"vocab_sise": 3000})
    with pytest.raises(ConfigError, match=r"preprocess\.vocab_sise: unknown key \(value 3000\)\. Allowed keys: .*vocab_size"):
        load_section(PreprocessConfig, SECTION, path)


def test_unknown_nested_key_named(tmp_path: Path) -> None:
    path = _write_params(tmp_path, {"text": {"lower": True}})
    with pytest.raises(ConfigError, match=r"preprocess\.text\.lower: unknown key .*Allowed keys: .*lowercase"):
        load_section(PreprocessConfig, SECTION, path)


@pytest.mark.parametrize(
    ("key", "value", "allowed"),
    [
        ("vocab_size", 50, ">= 100 and <= 65536"),
        ("max_len", 4, ">= 8 and <= 1024"),
        ("validation_fraction", 0.0, "> 0 and <= 0.4"),
        ("max_quarantine_share", 1.5, ">= 0 and <= 1"),
        ("max_message_chars", 5, ">= 10 and <= 100000"),
    ],
)
def test_out_of_range_value_named(tmp_path: Path, key: str, value: float, allowed: str) -> None:
    path = _write_params(tmp_path, {key: value})
    expected = rf"preprocess\.{key} = {value!r} is invalid: .*Allowed range: {allowed}\."
    with pytest.raises(ConfigError, match=expected):
        load_section(PreprocessConfig, SECTION, path)


def test_fractions_leave_half_for_training() -> None:
    with pytest.raises(ConfigError, match=r"preprocess\.test_fraction = 0.3 is invalid: .*leaves less than half"):
        parse_section(PreprocessConfig, SECTION, {"validation_fraction": 0.3, "test_fraction": 0.3})


def test_unknown_redaction_kind_named() -> None:
    with pytest.raises(ConfigError, match=r"preprocess\.text\.redact\.0 = 'ssn' is invalid"):
        parse_section(PreprocessConfig, SECTION, {"text": {"redact": ["ssn"]}})


def test_override_wins_over_file(tmp_path: Path) -> None:
    path = _write_params(tmp_path, {"max_len": 40, "text": {"lowercase": True}})
    config = load_section(PreprocessConfig, SECTION, path, {"max_len": 64, "text.lowercase": False})
    assert config.max_len == 64
    assert config.text.lowercase is False


def test_missing_section_warns(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    params = tmp_path / "params.yaml"
    params.write_text("preproces:\n  max_len: 16\n", encoding="utf-8")

    with caplog.at_level("WARNING", logger="hybrid_dialogue.config"):
        config = load_section(PreprocessConfig, "preprocess", params)

    assert config == PreprocessConfig()
    assert "has no 'preprocess' section" in caplog.text
    assert "Sections found: preproces" in caplog.text


def test_boolean_rejected_for_number(tmp_path: Path) -> None:
    path = _write_params(tmp_path, {"vocab_size": True})
    with pytest.raises(ConfigError, match="preprocess.vocab_size = True is invalid: .*not a boolean"):
        load_section(PreprocessConfig, SECTION, path)


def test_boolean_still_accepted_for_flags(tmp_path: Path) -> None:
    path = _write_params(tmp_path, {"use_context": False})
    assert load_section(PreprocessConfig, SECTION, path).use_context is False


def test_override_below_scalar_named(tmp_path: Path) -> None:
    path = _write_params(tmp_path, {"vocab_size": 500})
    with pytest.raises(ConfigError, match="cannot set vocab_size.x: vocab_size is 500, not a section"):
        load_section(PreprocessConfig, SECTION, path, overrides={"vocab_size.x": 1})
