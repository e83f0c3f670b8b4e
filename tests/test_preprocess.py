"""The preprocess stage on small JSONL fixtures, the generated corpus and the public Bitext corpus."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml
from click.testing import CliRunner

from hybrid_dialogue.cli.main import cli
from hybrid_dialogue.config import parse_section
from hybrid_dialogue.data import pairs as pairs_module
from hybrid_dialogue.data.dataset import PAIR_COLUMNS, SPLITS, load_manifest, load_split, load_tokenizer
from hybrid_dialogue.data.importers import ImportOptions, import_corpus
from hybrid_dialogue.data.pairs import split_dialogues
from hybrid_dialogue.data.preprocess import PreprocessConfig, PreprocessError, PreprocessResult, run_preprocess
from hybrid_dialogue.data.redaction import NO_REDACTIONS
from hybrid_dialogue.data.text import CONTEXT_SEPARATOR, TextRules
from hybrid_dialogue.data.tokenizer import UNK_ID, TextTokenizer
from hybrid_dialogue.data.validation import validate_pairs

INTENTS = ("order_status", "refund", "password_reset", "delivery_delay")
ORDER_WORDS = {"order_status": "where is my order", "refund": "i want my money back for order",
               "password_reset": "i cannot log in, reset my password for account",
               "delivery_delay": "my parcel is late, it was due with order"}
PII = ("you can reach me at maria.lopez@example.com", "call me on +44 20 7946 0958",
       "my card was 4111 1111 1111 1111", "ship it to 12 baker street, london")

# Small enough for a 2-core machine, with enough text for BPE to learn merges.
CONFIG = PreprocessConfig(vocab_size=200, max_len=24, max_quarantine_share=0.5)


def _dialogue(index: int, intent: str) -> dict:
    """Return a 4-turn dialogue. Every third one has personal data in its second customer turn."""
    gender = ("female", "male")[index % 2]
    customer_second = f"thanks, {PII[index % 4]}" if index % 3 == 0 else "thanks, that helps"
    return {
        "id": f"d{index:04d}",
        "turns": [
            {"role": "customer", "text": f"Hi, {ORDER_WORDS[intent]} {100000 + index}?"},
            {"role": "agent", "text": f"I can help with {intent.replace('_', ' ')}. Let me check {100000 + index}."},
            {"role": "customer", "text": customer_second},
            {"role": "agent", "text": "You're welcome, have a nice day."},
        ],
        "intent": intent,
        "metadata": {"customer_name": ("Maria", "James")[index % 2], "gender": gender, "region": "north"},
    }


def _write_lines(path: Path, lines: list[bytes]) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(b"".join(line + b"\n" for line in lines))
    return path


def _corpus_lines(n_dialogues: int = 80) -> list[bytes]:
    return [json.dumps(_dialogue(i, INTENTS[i % len(INTENTS)])).encode() for i in range(n_dialogues)]


def _run(tmp_path: Path, config: PreprocessConfig = CONFIG) -> PreprocessResult:
    return run_preprocess(
        tmp_path / "raw", tmp_path / "processed", config, tmp_path / "metrics" / "preprocess.json",
        tmp_path / "reports", tmp_path / "quarantine" / "preprocess.jsonl",
    )


def _quarantine(tmp_path: Path) -> list[dict]:
    text = (tmp_path / "quarantine" / "preprocess.jsonl").read_text(encoding="utf-8")
    return [json.loads(line) for line in text.splitlines()]


# --- The processed dataset -------------------------------------------------------


def test_outputs_follow_dataset_contract(tmp_path: Path) -> None:
    _write_lines(tmp_path / "raw" / "dialogues.jsonl", _corpus_lines())
    result = _run(tmp_path)

    processed = tmp_path / "processed"
    manifest = load_manifest(processed)
    tokenizer = load_tokenizer(processed)
    assert manifest["max_len"] == CONFIG.max_len
    assert manifest["vocab_size"] == tokenizer.vocab_size
    assert manifest["tokenizer_fingerprint"] == tokenizer.fingerprint
    assert manifest["context_separator"] == CONTEXT_SEPARATOR
    for split in SPLITS:
        data = load_split(processed, split)
        assert tuple(data.frame.columns) == PAIR_COLUMNS
        assert data.input_ids.shape == (len(data), CONFIG.max_len)
        assert data.input_ids.dtype == np.int32
        assert data.response_ids.shape == (len(data), CONFIG.max_len)
        assert manifest["rows"][split] == len(data)

    rules = parse_section(TextRules, "text_rules", json.loads((processed / "text_rules.json").read_text()))
    assert rules == CONFIG.text
    assert (tmp_path / "reports" / "data_docs" / "index.html").is_file()
    assert result.data_docs_index == tmp_path / "reports" / "data_docs" / "index.html"


def test_pairs_cleaned_with_context(tmp_path: Path) -> None:
    _write_lines(tmp_path / "raw" / "dialogues.jsonl", _corpus_lines())
    _run(tmp_path)
    frame = pd.concat([load_split(tmp_path / "processed", split).frame for split in SPLITS])

    assert len(frame) == 160  # two agent turns after customer turns in each of 80 dialogues
    second = frame[frame["pair_id"] == "d0000:3"].iloc[0]
    assert second["turn_index"] == 3
    assert second["customer_text"] == "thanks, you can reach me at [EMAIL]"
    assert second["context_text"] == "i can help with order status. let me check 100000."
    assert second["input_text"] == second["customer_text"] + CONTEXT_SEPARATOR + second["context_text"]
    assert second["gender"] == "female"
    first = frame[frame["pair_id"] == "d0000:1"].iloc[0]
    assert first["context_text"] == ""
    assert first["input_text"] == "hi, where is my order 100000?"


def test_metrics_report_counts(tmp_path: Path) -> None:
    _write_lines(tmp_path / "raw" / "dialogues.jsonl", _corpus_lines())
    result = _run(tmp_path)
    metrics = json.loads((tmp_path / "metrics" / "preprocess.json").read_text())

    assert metrics == result.metrics
    assert metrics["pairs"]["total"] == sum(metrics["pairs"][split] for split in SPLITS) == 160
    # Every third of 80 dialogues has one of four kinds, in turn: 27 in all.
    assert metrics["redactions"] == {"email": 7, "phone": 6, "card": 7, "address": 7}
    assert metrics["quarantine"] == {}
    assert metrics["records"] == {"read": 80, "quarantined": 0, "quarantined_share": 0.0}
    assert metrics["intents"] == len(INTENTS)
    assert metrics["vocab_size"] == load_tokenizer(tmp_path / "processed").vocab_size
    assert set(metrics["length_percentiles"]["input_tokens"]) == {"p50", "p90", "p95", "p99", "max"}
    assert metrics["length_percentiles"]["input_tokens"]["max"] <= CONFIG.max_len
    assert 0.0 <= metrics["truncation_rate"]["input"]["train"] <= 1.0


def test_rerun_is_deterministic(tmp_path: Path) -> None:
    _write_lines(tmp_path / "raw" / "dialogues.jsonl", _corpus_lines())
    _run(tmp_path)
    first = load_split(tmp_path / "processed", "test")
    first_fingerprint = load_manifest(tmp_path / "processed")["tokenizer_fingerprint"]
    _run(tmp_path)
    second = load_split(tmp_path / "processed", "test")
    assert load_manifest(tmp_path / "processed")["tokenizer_fingerprint"] == first_fingerprint
    pd.testing.assert_frame_equal(first.frame, second.frame)
    np.testing.assert_array_equal(first.input_ids, second.input_ids)


# --- Quarantine --------------------------------------------------------------------


def test_quarantine_each_malformed_kind(tmp_path: Path) -> None:
    good = _corpus_lines(40)
    too_long = _dialogue(900, "refund")
    too_long["turns"][0]["text"] = "x" * 300
    invisible = _dialogue(901, "refund")
    invisible["turns"][2]["text"] = "\u200b\u200b"
    unknown_role = _dialogue(902, "refund")
    unknown_role["turns"][1]["role"] = "bot"
    bad = [
        b'{"id": "broken", "turns": [',  # line 41: invalid JSON
        b'{"id": "latin1", "turns": [{"role": "customer", "text": "caf\xe9"}]}',  # line 42: invalid UTF-8
        json.dumps({"id": "empty", "turns": []}).encode(),  # line 43
        json.dumps(unknown_role).encode(),  # line 44
        json.dumps(too_long).encode(),  # line 45
        json.dumps(_dialogue(0, "order_status")).encode(),  # line 46: id d0000 again
        json.dumps(invisible).encode(),  # line 47: empty once invisible characters are removed
        b"",  # blank: skipped, not a record
    ]
    _write_lines(tmp_path / "raw" / "dialogues.jsonl", good + bad)
    config = CONFIG.model_copy(update={"max_message_chars": 200})
    result = _run(tmp_path, config)

    records = {record["line"]: record for record in _quarantine(tmp_path)}
    assert {line: record["reason"] for line, record in records.items()} == {
        41: "invalid_json", 42: "invalid_utf8", 43: "missing_turns", 44: "unknown_role",
        45: "turn_too_long", 46: "duplicate_id", 47: "empty_turn",
    }
    assert records[41]["dialogue_id"] is None
    assert records[44]["dialogue_id"] == "d0902"
    assert records[42]["file"] == "dialogues.jsonl"
    assert result.metrics["quarantine"] == {
        "duplicate_id": 1, "empty_turn": 1, "invalid_json": 1, "invalid_utf8": 1, "missing_turns": 1,
        "turn_too_long": 1, "unknown_role": 1,
    }
    assert result.metrics["records"]["read"] == 47
    assert result.metrics["records"]["quarantined"] == 7


def test_quarantine_record_without_text(tmp_path: Path) -> None:
    record = _dialogue(0, "refund")
    record["turns"][1]["role"] = "bot"
    _write_lines(tmp_path / "raw" / "dialogues.jsonl", [*_corpus_lines(40)[1:], json.dumps(record).encode()])
    _run(tmp_path)
    quarantined = _quarantine(tmp_path)
    assert len(quarantined) == 1
    assert "maria" not in json.dumps(quarantined).lower()


def test_quarantine_share_above_max_fails(tmp_path: Path) -> None:
    _write_lines(tmp_path / "raw" / "dialogues.jsonl", _corpus_lines(20) + [b"{not json"] * 5)
    config = CONFIG.model_copy(update={"max_quarantine_share": 0.1})
    expected = (
        r"quarantined 5 of 25 records \(20\.0%\), above preprocess\.max_quarantine_share = 0\.1 "
        r"\(invalid_json 5\)\. .*fix or remove them, or raise max_quarantine_share"
    )
    with pytest.raises(PreprocessError, match=expected):
        _run(tmp_path, config)
    assert len(_quarantine(tmp_path)) == 5  # written before the stage fails
    assert not (tmp_path / "processed").exists()


def _import_with_long_turns(tmp_path: Path) -> Path:
    """Import 80 good dialogues, 3 with a 300-character turn and 4 lines of invalid JSON; return the raw directory.

    The import rejects the 4 invalid lines (4 of 87, under its limit of 0.05). Preprocessing with
    max_message_chars = 200 rejects the 3 long dialogues (3 of the 83 it reads, also under 0.05).
    """
    long_turns = []
    for index in range(3):
        record = _dialogue(900 + index, "refund")
        record["turns"][0]["text"] = "x" * 300
        long_turns.append(json.dumps(record).encode())
    source = _write_lines(tmp_path / "source.jsonl", _corpus_lines() + long_turns + [b"{not json"] * 4)
    output = tmp_path / "raw" / "dialogues.jsonl"
    imported = import_corpus(source, "jsonl", output, ImportOptions(max_quarantine_share=0.05))
    assert (imported.records_read, imported.n_quarantined) == (87, 4)
    return tmp_path / "raw"


def test_import_rejects_count_toward_limit(tmp_path: Path) -> None:
    raw = _import_with_long_turns(tmp_path)
    config = CONFIG.model_copy(update={"max_message_chars": 200, "max_quarantine_share": 0.05})

    expected = (
        r"quarantined 7 of 87 raw records \(8\.0%\), above preprocess\.max_quarantine_share = 0\.05: "
        r"the import rejected 4 \(listed in .*raw/dialogues\.jsonl\.quarantine\) and preprocessing 3 "
        r"\(turn_too_long 3, listed with file, line and reason in .*preprocess\.jsonl\)\. .*"
        r"raise preprocess\.max_quarantine_share in params\.yaml"
    )
    with pytest.raises(PreprocessError, match=expected):
        _run(tmp_path, config)
    assert len(_quarantine(tmp_path)) == 3
    assert not (tmp_path / "processed").exists()

    # The same data passes under a limit of 0.1, and the metrics count both steps.
    result = _run(tmp_path, config.model_copy(update={"max_quarantine_share": 0.1}))
    assert result.metrics["records"] == {
        "read": 83, "quarantined": 3, "quarantined_share": round(3 / 83, 6),
        "import_quarantined": 4, "total_quarantined_share": round(7 / 87, 6),
    }  # fmt: skip

    # Without the import manifest, only this stage's 3 of 83 count.
    (raw / "dialogues.jsonl.import.json").unlink()
    assert _run(tmp_path, config).metrics["records"]["quarantined"] == 3


def test_changed_imported_file_fails(tmp_path: Path) -> None:
    raw = _import_with_long_turns(tmp_path)
    with (raw / "dialogues.jsonl").open("ab") as handle:
        handle.write(json.dumps(_dialogue(999, "refund")).encode() + b"\n")

    with pytest.raises(PreprocessError, match=r"dialogues\.jsonl\.import\.json describes another version of "
                       r"dialogues\.jsonl: its SHA-256 differs"):
        _run(tmp_path)


def test_failed_run_keeps_previous_output(tmp_path: Path) -> None:
    _write_lines(tmp_path / "raw" / "dialogues.jsonl", _corpus_lines())
    _run(tmp_path)
    manifest_before = (tmp_path / "processed" / "manifest.json").read_bytes()
    _write_lines(tmp_path / "raw" / "dialogues.jsonl", [b"\xff\xfe"] * 10)
    with pytest.raises(PreprocessError, match="quarantined 10 of 10 records"):
        _run(tmp_path)
    assert (tmp_path / "processed" / "manifest.json").read_bytes() == manifest_before


@pytest.mark.parametrize(
    ("setup", "message"),
    [
        (lambda raw: None, r"raw data directory not found: .*raw\. Make the default corpus"),
        (lambda raw: raw.mkdir(), r"no \*\.jsonl files in .*raw"),
        (lambda raw: _write_lines(raw / "empty.jsonl", [b"", b"  "]), "contain no records"),
    ],
)
def test_missing_input_fails_clearly(tmp_path: Path, setup, message: str) -> None:
    setup(tmp_path / "raw")
    with pytest.raises(PreprocessError, match=message):
        _run(tmp_path)


# --- Splits and tokenizer ------------------------------------------------------------


def test_splits_disjoint_and_stratified(tmp_path: Path) -> None:
    _write_lines(tmp_path / "raw" / "dialogues.jsonl", _corpus_lines(200))
    _run(tmp_path)
    frames = {split: load_split(tmp_path / "processed", split).frame for split in SPLITS}

    ids = {split: set(frame["dialogue_id"]) for split, frame in frames.items()}
    assert not ids["train"] & ids["validation"]
    assert not ids["train"] & ids["test"]
    assert not ids["validation"] & ids["test"]
    assert sum(len(split_ids) for split_ids in ids.values()) == 200
    for split, frame in frames.items():
        per_intent = frame.drop_duplicates("dialogue_id")["intent"].value_counts()
        assert set(per_intent.index) == set(INTENTS), split
        expected = {"train": 40, "validation": 5, "test": 5}[split]  # 50 dialogues per intent, 10% each
        assert set(per_intent) == {expected}, split


def test_split_rare_intent_everywhere() -> None:
    intents = pd.Series(["common"] * 50 + ["rare"] * 3, index=[f"d{i}" for i in range(53)])
    splits = split_dialogues(intents, 0.1, 0.1, seed=1)
    rare = splits[intents == "rare"]
    assert sorted(rare) == ["test", "train", "validation"]


def test_split_depends_on_seed_only() -> None:
    intents = pd.Series(["a", "b"] * 30, index=[f"d{i}" for i in range(60)])
    first = split_dialogues(intents, 0.1, 0.1, seed=7)
    shuffled = split_dialogues(intents.sample(frac=1, random_state=3), 0.1, 0.1, seed=7)
    assert first.equals(shuffled.reindex(first.index))
    assert not first.equals(split_dialogues(intents, 0.1, 0.1, seed=8))


def test_intent_too_rare_fails(tmp_path: Path) -> None:
    lines = _corpus_lines(40) + [json.dumps(_dialogue(500 + i, "refund") | {"intent": "warranty"}).encode() for i in range(2)]
    _write_lines(tmp_path / "raw" / "dialogues.jsonl", lines)
    with pytest.raises(PreprocessError, match=r"1 intent\(s\) have fewer than 3 dialogues with pairs \('warranty': 2\)"):
        _run(tmp_path)


def test_tokenizer_fit_on_train_only(tmp_path: Path) -> None:
    # A letter that only validation and test dialogues use must be unknown to the tokenizer.
    records = [_dialogue(i, INTENTS[i % len(INTENTS)]) for i in range(80)]
    intents = pd.Series({record["id"]: record["intent"] for record in records})
    splits = split_dialogues(intents, CONFIG.validation_fraction, CONFIG.test_fraction, CONFIG.seed)
    for record in records:
        if splits[record["id"]] != "train":
            record["turns"][0]["text"] += " жжж"
    _write_lines(tmp_path / "raw" / "dialogues.jsonl", [json.dumps(record).encode() for record in records])
    result = _run(tmp_path)

    assert result.metrics["unknown_token_rate"]["train"] == 0.0
    assert result.metrics["unknown_token_rate"]["validation"] > 0.0
    assert result.metrics["unknown_token_rate"]["test"] > 0.0
    test = load_split(tmp_path / "processed", "test")
    assert (test.input_ids == UNK_ID).any()

    train = load_split(tmp_path / "processed", "train").frame
    refit = TextTokenizer.fit(
        pd.concat([train["input_text"], train["agent_text"]], ignore_index=True), CONFIG.vocab_size, CONFIG.min_frequency
    )
    assert refit.fingerprint == load_tokenizer(tmp_path / "processed").fingerprint


# --- Validation ---------------------------------------------------------------------


def _valid_pairs() -> pd.DataFrame:
    rows = []
    for index in range(12):
        split = SPLITS[index % 3]
        text = f"where is my order {index}"
        rows.append({
            "pair_id": f"d{index}:1", "dialogue_id": f"d{index}", "turn_index": 1, "intent": ("a", "b")[index // 6],
            "customer_text": text, "context_text": "", "input_text": text, "agent_text": "it shipped",
            "customer_name": "", "gender": "", "region": "", "split": split,
        })
    return pd.DataFrame(rows)


def test_validation_passes_clean_pairs(tmp_path: Path) -> None:
    report = validate_pairs(_valid_pairs(), 100, TextRules().redact, tmp_path / "docs")
    assert report.success, report.summary()
    assert report.evaluated > 20
    assert (tmp_path / "docs" / "index.html").is_file()


def test_validation_failure_summary_readable(tmp_path: Path) -> None:
    pairs = _valid_pairs()
    pairs.loc[0, ["customer_text", "input_text"]] = "mail me at maria@example.com"
    pairs.loc[1, ["customer_text", "input_text"]] = "call +44 20 7946 0958 or card 4111 1111 1111 1111"
    pairs.loc[2, "agent_text"] = ""
    # Dialogue d3 (train) gets a second pair in test, and validation loses intent "b": 11 rows remain.
    pairs = pd.concat([pairs, pairs.iloc[[3]].assign(pair_id="d3:3", split="test")], ignore_index=True)
    pairs = pairs[~((pairs["split"] == "validation") & (pairs["intent"] == "b"))]
    assert len(pairs) == 11

    report = validate_pairs(pairs, 100, TextRules().redact, tmp_path / "docs")
    assert not report.success
    summary = report.summary()
    assert "pairs: expect_column_values_to_not_match_regex(column='customer_text') [no email left] failed on 1 of 11 rows" in summary
    assert "pairs: expect_column_values_to_not_match_regex(column='customer_text') [no phone left] failed on 1 of 11 rows" in summary
    assert "[no card number left in any text] failed on 1 of 11 rows" in summary
    assert "pairs: expect_column_value_lengths_to_be_between(column='agent_text') failed on 1 of 11 rows" in summary
    assert "dialogues: expect_column_values_to_be_unique(column='dialogue_id')" in summary
    assert "pairs_validation: expect_column_distinct_values_to_contain_set(column='intent')" in summary
    assert "[every intent occurs in this split] failed: 1 missing, ['b']" in summary
    assert "each dialogue in one split] failed on 2 of 11 rows, e.g. ['d3', 'd3']" in summary
    assert "maria@example.com" not in summary  # counts only, no personal data
    assert (tmp_path / "docs" / "index.html").is_file()


def test_broken_redaction_stops_stage(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # If cleaning let personal data through, validation must fail the stage and publish nothing.
    monkeypatch.setattr(pairs_module, "clean_text", lambda text, rules: (text.lower(), NO_REDACTIONS))
    _write_lines(tmp_path / "raw" / "dialogues.jsonl", _corpus_lines())
    with pytest.raises(PreprocessError, match=r"data validation failed, \d+ expectation\(s\):\n.*\[no email left\] failed on"):
        _run(tmp_path)
    assert not (tmp_path / "processed").exists()
    assert not (tmp_path / "metrics" / "preprocess.json").exists()
    assert (tmp_path / "reports" / "data_docs" / "index.html").is_file()


# --- Command line -------------------------------------------------------------------


def _cli_args(tmp_path: Path, repo_root: Path) -> list[str]:
    return [
        "preprocess", "--params", str(repo_root / "params.yaml"),
        "--raw-dir", str(tmp_path / "raw"), "--output-dir", str(tmp_path / "processed"),
        "--metrics", str(tmp_path / "metrics.json"), "--reports-dir", str(tmp_path / "reports"),
        "--quarantine", str(tmp_path / "quarantine.jsonl"), "--no-progress",
    ]


def test_cli_corrupted_input_clean_error(tmp_path: Path, repo_root: Path) -> None:
    _write_lines(tmp_path / "raw" / "dialogues.jsonl", [b"\x00\xff garbage", b"{", b"[1, 2]"])
    result = CliRunner().invoke(cli, _cli_args(tmp_path, repo_root))
    assert result.exit_code == 1
    assert "Error: quarantined 3 of 3 records (100.0%)" in result.output
    assert "invalid_json 1, invalid_utf8 1, not_an_object 1" in result.output
    assert "Traceback" not in result.output


def test_cli_runs_with_overrides(tmp_path: Path, repo_root: Path) -> None:
    _write_lines(tmp_path / "raw" / "dialogues.jsonl", _corpus_lines())
    args = [*_cli_args(tmp_path, repo_root), "--set", "vocab_size=200", "--set", "max_len=16", "--set", "text.lowercase=false"]
    result = CliRunner().invoke(cli, args)
    assert result.exit_code == 0, result.output
    assert "Pairs: " in result.output
    assert load_manifest(tmp_path / "processed")["max_len"] == 16
    train = load_split(tmp_path / "processed", "train").frame
    assert train.loc[train["turn_index"] == 1, "customer_text"].str.startswith("Hi, ").all()


def test_cli_bad_override_named(tmp_path: Path, repo_root: Path) -> None:
    result = CliRunner().invoke(cli, [*_cli_args(tmp_path, repo_root), "--set", "max_len"])
    assert result.exit_code == 2
    assert "expected KEY=VALUE, got 'max_len'" in result.output


# --- Real corpora ------------------------------------------------------------------


def test_generated_corpus_preprocesses(tmp_path: Path, repo_root: Path) -> None:
    synth = pytest.importorskip("hybrid_dialogue.data.synth")
    from hybrid_dialogue.config import load_section

    corpus = load_section(synth.CorpusConfig, "corpus", repo_root / "params.yaml", {"n_dialogues": 1500})
    synth.synthesize_corpus(corpus, tmp_path / "raw" / "dialogues.jsonl")
    result = _run(tmp_path, CONFIG.model_copy(update={"vocab_size": 500, "max_quarantine_share": 0.0}))

    metrics = result.metrics
    assert metrics["records"]["quarantined"] == 0
    assert all(count > 0 for count in metrics["redactions"].values()), metrics["redactions"]
    assert metrics["intents"] >= 15
    frame = load_split(tmp_path / "processed", "train").frame
    assert set(frame["gender"]) <= {"female", "male"}
    assert not frame["customer_text"].str.contains("@", regex=False).any()


def test_bitext_corpus_imports_and_preprocesses(tmp_path: Path, bitext_csv: Path) -> None:
    importers = pytest.importorskip("hybrid_dialogue.data.importers")
    imported = importers.import_corpus(bitext_csv, "bitext", tmp_path / "raw" / "dialogues.jsonl")
    assert imported.n_dialogues == 6480
    result = _run(tmp_path, PreprocessConfig(vocab_size=1000, max_len=64, max_quarantine_share=0.0))

    metrics = result.metrics
    assert metrics["pairs"]["total"] == 6480
    assert metrics["intents"] == 27
    assert metrics["records"]["quarantined"] == 0
    assert metrics["redactions"]["email"] > 0  # the agent replies name support@example.com
    test = load_split(tmp_path / "processed", "test").frame
    assert test["intent"].nunique() == 27
    # Order numbers stay, because the agent's reply needs them.
    train = load_split(tmp_path / "processed", "train").frame
    assert train["customer_text"].str.contains("113542617735902", regex=False).any()


# --- DVC ---------------------------------------------------------------------------


@pytest.mark.slow
def test_dvc_repro_runs_stage(tmp_path: Path, repo_root: Path) -> None:
    # A real git + DVC repository with the preprocess stage of dvc.yaml and its source dependencies.
    repo = tmp_path / "repo"
    stage = yaml.safe_load((repo_root / "dvc.yaml").read_text(encoding="utf-8"))["stages"]["preprocess"]
    for dependency in stage["deps"]:
        if dependency.startswith("src/"):
            (repo / dependency).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy(repo_root / dependency, repo / dependency)
    (repo / "dvc.yaml").write_text(yaml.safe_dump({"stages": {"preprocess": stage}}), encoding="utf-8")
    shutil.copy(repo_root / "params.yaml", repo / "params.yaml")
    _write_lines(repo / "data" / "raw" / "dialogues.jsonl", _corpus_lines())

    bin_dir = str(Path(sys.executable).parent)
    env = {
        **os.environ,
        "PATH": bin_dir + os.pathsep + os.environ.get("PATH", ""),
        "DVC_NO_ANALYTICS": "1",
        "DVC_SITE_CACHE_DIR": str(tmp_path / "dvc-site-cache"),
    }

    def run(*command: str) -> subprocess.CompletedProcess:
        result = subprocess.run(command, cwd=repo, env=env, capture_output=True, text=True, timeout=300)
        assert result.returncode == 0, f"{' '.join(command)} failed:\n{result.stdout}{result.stderr}"
        return result

    run("git", "init", "-q")
    run(str(Path(bin_dir) / "dvc"), "init", "-q")
    run(str(Path(bin_dir) / "dvc"), "repro", "preprocess")

    assert load_manifest(repo / "data" / "processed")["max_len"] == 40  # params.yaml
    assert (repo / "data" / "quarantine" / "preprocess.jsonl").is_file()
    assert (repo / "reports" / "data_docs" / "index.html").is_file()
    lock = yaml.safe_load((repo / "dvc.lock").read_text(encoding="utf-8"))["stages"]["preprocess"]
    assert lock["params"]["params.yaml"]["preprocess.max_len"] == 40
    metrics_shown = json.loads(run(str(Path(bin_dir) / "dvc"), "metrics", "show", "--json").stdout)
    assert metrics_shown[""]["data"]["metrics/preprocess.json"]["data"]["pairs"]["total"] == 160

    again = run(str(Path(bin_dir) / "dvc"), "repro", "preprocess")
    assert "didn't change" in again.stdout
