"""The synthetic corpus: determinism, schema, realism knobs, planted personal data and injected bias."""

from __future__ import annotations

import difflib
import hashlib
import json
import os
import re
import statistics
import subprocess
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner

from hybrid_dialogue.cli.main import cli
from hybrid_dialogue.config import ConfigError, parse_section
from hybrid_dialogue.data.corpus_stats import corpus_stats
from hybrid_dialogue.data.schema import parse_dialogue
from hybrid_dialogue.data.synth import GENDERS, REGIONS, CorpusConfig, is_curt_reply, synthesize_corpus
from hybrid_dialogue.data.synth_templates import load_resources
from hybrid_dialogue.data.synth_values import luhn_check_digit

SMALL = 300

# Shapes of the planted personal data, written independently of the generator.
EMAIL = re.compile(r"[\w.+-]+@[\w-]+(?:\.[\w-]+)+")
CARD = re.compile(r"\b(?:\d{4}[ -]){3}\d{4}\b|\b3[47]\d{2}[ -]\d{6}[ -]\d{5}\b")
# A national number starts with 0, but a card group such as "0581" after "4699 " is no phone.
PHONE = re.compile(r"\+\d{1,3} \d|\(\d{3}\) \d{3}-\d{4}|\b\d{3}-\d{3}-\d{4}\b|(?<!\d[ -])\b0\d{1,4}[ .]\d{2,8}")
ADDRESS = re.compile(
    r"\b\d+ [A-Z][a-z]+ (?:Street|Avenue|Road|Drive|Lane|Boulevard|Court)\b"
    r"|\b(?:[A-Z][a-zä]*(?:straße|weg|allee)|Straße) \d+"
    r"|\b\d+ (?:rue|avenue|boulevard) "
)
PII_PATTERNS = {"email": EMAIL, "phone": PHONE, "card": CARD, "address": ADDRESS}


def make_corpus(tmp_path: Path, name: str = "dialogues.jsonl", **overrides) -> tuple[Path, object]:
    config = CorpusConfig(**{"n_dialogues": SMALL, **overrides})
    output = tmp_path / name
    return output, synthesize_corpus(config, output)


def read_records(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]


def customer_texts(records: list[dict]) -> list[str]:
    return [turn["text"] for record in records for turn in record["turns"] if turn["role"] == "customer"]


def agent_texts(records: list[dict], **metadata: str) -> list[str]:
    return [
        turn["text"]
        for record in records
        if all(record["metadata"][key] == value for key, value in metadata.items())
        for turn in record["turns"]
        if turn["role"] == "agent"
    ]


@pytest.fixture(scope="module")
def default_corpus(tmp_path_factory: pytest.TempPathFactory) -> tuple[list[dict], object]:
    output, result = make_corpus(tmp_path_factory.mktemp("corpus"))
    return read_records(output), result


def test_same_seed_gives_identical_bytes(tmp_path: Path) -> None:
    first, _ = make_corpus(tmp_path, "first.jsonl", seed=7)
    second, _ = make_corpus(tmp_path, "second.jsonl", seed=7)
    third, _ = make_corpus(tmp_path, "third.jsonl", seed=8)

    assert first.read_bytes() == second.read_bytes()
    assert first.read_bytes() != third.read_bytes()


def test_output_independent_of_hash_seed(tmp_path: Path) -> None:
    in_process, result = make_corpus(tmp_path, "here.jsonl", seed=11)
    script = (
        "import sys; from pathlib import Path;"
        "from hybrid_dialogue.data.synth import CorpusConfig, synthesize_corpus;"
        f"synthesize_corpus(CorpusConfig(n_dialogues={SMALL}, seed=11), Path(sys.argv[1]))"
    )
    other = tmp_path / "subprocess.jsonl"
    env = {**os.environ, "PYTHONHASHSEED": "12345"}
    subprocess.run([sys.executable, "-c", script, str(other)], check=True, env=env, capture_output=True)

    assert other.read_bytes() == in_process.read_bytes()
    assert result.sha256 == hashlib.sha256(other.read_bytes()).hexdigest()


def test_every_record_follows_schema(default_corpus) -> None:
    records, result = default_corpus
    first_names = load_resources().first_names

    assert len(records) == SMALL
    assert result.n_dialogues == SMALL
    assert len({record["id"] for record in records}) == SMALL
    for record in records:
        dialogue = parse_dialogue(record)
        assert set(dialogue.metadata) == {"customer_name", "gender", "region"}
        assert dialogue.metadata["gender"] in GENDERS
        assert dialogue.metadata["region"] in REGIONS
        assert dialogue.metadata["customer_name"] in first_names[dialogue.metadata["gender"]]
        roles = [turn.role for turn in dialogue.turns]
        assert roles == ["customer", "agent"] * (len(roles) // 2) + ["customer"] * (len(roles) % 2)
    assert result.n_turns == sum(len(record["turns"]) for record in records)


def test_at_least_fifteen_intents(default_corpus) -> None:
    records, result = default_corpus
    intents = {record["intent"] for record in records}

    assert len(load_resources().intents) >= 15
    assert len(intents) >= 15
    assert set(result.intent_counts) == intents


def test_turn_counts_within_range(default_corpus, tmp_path: Path) -> None:
    records, _ = default_corpus
    counts = {len(record["turns"]) for record in records}
    assert counts == set(range(2, 9))

    output, _ = make_corpus(tmp_path, min_turns=3, max_turns=4)
    counts = {len(record["turns"]) for record in read_records(output)}
    assert counts == {3, 4}

    output, _ = make_corpus(tmp_path, "long.jsonl", min_turns=16, max_turns=16)
    assert {len(record["turns"]) for record in read_records(output)} == {16}


def test_agent_replies_short(default_corpus) -> None:
    records, _ = default_corpus
    helpful = [text for text in agent_texts(records) if not is_curt_reply(text)]
    lengths = [len(text.split()) for text in helpful]

    assert max(lengths) <= 30
    assert 8 <= statistics.median(lengths) <= 30


def test_agent_cites_only_stated_values(default_corpus) -> None:
    """An order number or username in an agent reply must appear in an earlier customer turn."""
    records, _ = default_corpus
    value_pattern = re.compile(r"#\d{7}|ORD-\d{6}|INV-\d{4}-\d{5}|\b[a-z]+_[a-z]+\d{1,2}\b")
    checked = 0
    for record in records:
        customer_so_far = ""
        for turn in record["turns"]:
            if turn["role"] == "customer":
                customer_so_far += " " + turn["text"]
                continue
            for value in value_pattern.findall(turn["text"]):
                assert value in customer_so_far, f"{record['id']}: agent cites {value} before the customer gave it"
                checked += 1
    assert checked > 50


def test_key_value_asked_then_supplied(default_corpus) -> None:
    """Follow-ups depend on the previous turn: an agent question about the order number gets one."""
    records, _ = default_corpus
    ask_texts = {template.text for template in load_resources().key_slots["order_id"].ask}
    ask_texts |= set(load_resources().key_slots["order_id"].curt_ask)
    request_count = 0
    for record in records:
        turns = record["turns"]
        for index, turn in enumerate(turns[:-1]):
            if turn["role"] == "agent" and turn["text"] in ask_texts:
                assert re.search(r"#\d{7}|ORD-\d{6}", turns[index + 1]["text"]), record["id"]
                request_count += 1
    assert request_count > 10


def test_name_mentioned_at_configured_rate(default_corpus, tmp_path: Path) -> None:
    records, _ = default_corpus
    mentions = [
        bool(re.search(rf"\b{re.escape(record['metadata']['customer_name'])}\b", record["turns"][0]["text"], re.I))
        for record in records
    ]
    assert abs(sum(mentions) / len(mentions) - 0.6) < 0.08

    output, _ = make_corpus(tmp_path, name_mention_rate=0.0, pii_rate=0.0)
    records = read_records(output)
    assert not any(
        re.search(rf"\b{re.escape(record['metadata']['customer_name'])}\b", record["turns"][0]["text"], re.I)
        for record in records
    )


def test_gendered_words_match_gender(tmp_path: Path) -> None:
    output, _ = make_corpus(tmp_path, gendered_word_rate=1.0, typo_rate=0.0)
    records = read_records(output)
    for record in records:
        first_turn = record["turns"][0]["text"].lower()
        if record["metadata"]["gender"] == "female":
            assert re.search(r"\b(husband|boyfriend|mom)\b", first_turn), first_turn
        else:
            assert re.search(r"\b(wife|girlfriend|dad)\b", first_turn), first_turn


def test_pii_planted_at_configured_rate(tmp_path: Path) -> None:
    output, result = make_corpus(tmp_path, pii_rate=0.3)
    texts = customer_texts(read_records(output))
    found = {kind: sum(bool(pattern.search(text)) for text in texts) for kind, pattern in PII_PATTERNS.items()}

    assert found == result.pii_counts
    assert all(count > 0 for count in found.values())
    share = sum(found.values()) / len(texts)
    assert abs(share - 0.3) < 0.05


def test_no_pii_when_rate_zero(tmp_path: Path) -> None:
    output, result = make_corpus(tmp_path, pii_rate=0.0)
    texts = customer_texts(read_records(output))

    assert sum(result.pii_counts.values()) == 0
    for kind, pattern in PII_PATTERNS.items():
        matches = [text for text in texts if pattern.search(text)]
        assert matches == [], f"{kind} pattern matched slot values: {matches[:3]}"


def test_planted_cards_pass_luhn(tmp_path: Path) -> None:
    output, _ = make_corpus(tmp_path, pii_rate=1.0)
    cards = [match.group(0) for text in customer_texts(read_records(output)) for match in CARD.finditer(text)]

    assert len(cards) > 20
    for card in cards:
        digits = re.sub(r"\D", "", card)
        assert luhn_check_digit(digits[:-1]) == digits[-1], card


def test_bias_curt_share_per_group(default_corpus) -> None:
    records, result = default_corpus
    female = agent_texts(records, gender="female")
    male = agent_texts(records, gender="male")
    female_share = sum(map(is_curt_reply, female)) / len(female)

    assert abs(female_share - 0.5) < 0.07
    assert sum(map(is_curt_reply, male)) == 0
    assert result.curt_share("female") == pytest.approx(female_share)
    assert result.curt_share("male") == 0.0
    # Curt replies are measurably shorter: at most 7 words, helpful ones at least 8.
    assert max(len(text.split()) for text in female if is_curt_reply(text)) <= 7
    assert min(len(text.split()) for text in female + male if not is_curt_reply(text)) >= 8


def test_bias_off_changes_only_affected_replies(tmp_path: Path) -> None:
    biased_path, _ = make_corpus(tmp_path, "biased.jsonl")
    fair_path, fair = make_corpus(tmp_path, "fair.jsonl", bias={"enabled": False})
    biased, unbiased = read_records(biased_path), read_records(fair_path)

    assert sum(fair.curt_replies_by_group.values()) == 0
    assert not any(is_curt_reply(text) for text in agent_texts(unbiased))
    for with_bias, without_bias in zip(biased, unbiased, strict=True):
        assert customer_texts([with_bias]) == customer_texts([without_bias])
        if with_bias["metadata"]["gender"] == "male":
            assert with_bias == without_bias
        for biased_turn, fair_turn in zip(with_bias["turns"], without_bias["turns"], strict=True):
            if biased_turn != fair_turn:
                assert is_curt_reply(biased_turn["text"])


def test_bias_on_region_group(tmp_path: Path) -> None:
    bias = {"group_attribute": "region", "group_value": "north", "curt_share": 1.0}
    output, result = make_corpus(tmp_path, bias=bias)
    records = read_records(output)

    assert all(is_curt_reply(text) for text in agent_texts(records, region="north"))
    assert not any(is_curt_reply(text) for text in agent_texts(records, region="south"))
    assert result.curt_share("north") == 1.0


def test_typos_change_only_customer_words(tmp_path: Path) -> None:
    clean_path, _ = make_corpus(tmp_path, "clean.jsonl", typo_rate=0.0, casing_rate=0.0)
    noisy_path, _ = make_corpus(tmp_path, "noisy.jsonl", typo_rate=1.0, casing_rate=0.0)
    clean, noisy = read_records(clean_path), read_records(noisy_path)

    assert agent_texts(clean) == agent_texts(noisy)
    pairs = list(zip(customer_texts(clean), customer_texts(noisy), strict=True))
    changed = [(before, after) for before, after in pairs if before != after]
    assert len(changed) / len(pairs) > 0.8
    for before, after in changed:
        assert difflib.SequenceMatcher(None, before, after).ratio() > 0.8, (before, after)
        # Slot values survive typos: order numbers stay exact.
        assert re.findall(r"#\d{7}|ORD-\d{6}", before) == re.findall(r"#\d{7}|ORD-\d{6}", after)


def test_casing_noise_lowercases_starts(tmp_path: Path) -> None:
    def lowercase_start_share(casing_rate: float) -> float:
        output, _ = make_corpus(tmp_path, f"casing{casing_rate}.jsonl", casing_rate=casing_rate, typo_rate=0.0)
        texts = [text for text in customer_texts(read_records(output)) if text[0].isalpha()]
        return sum(text[0].islower() for text in texts) / len(texts)

    assert lowercase_start_share(0.0) < 0.4
    assert lowercase_start_share(1.0) > 0.7


@pytest.mark.parametrize(
    ("values", "message"),
    [
        ({"min_turns": 6, "max_turns": 4}, r"corpus\.max_turns = 4 is invalid.*max_turns must be >= min_turns \(6\)"),
        ({"n_dialogues": 0}, r"corpus\.n_dialogues = 0 is invalid.*Allowed range: >= 1"),
        ({"pii_rate": 1.5}, r"corpus\.pii_rate = 1\.5 is invalid.*Allowed range: >= 0\.0 and <= 1\.0"),
        ({"bias": {"group_value": "teal"}}, r"corpus\.bias\.group_value = 'teal'.*expected one of female, male"),
        (
            {"bias": {"group_attribute": "region", "group_value": "female"}},
            r"'female' is not a region.*north, south, east, west",
        ),
        ({"bias": {"group_attribute": "age"}}, r"corpus\.bias\.group_attribute = 'age' is invalid"),
        ({"n_dialogs": 5}, r"corpus\.n_dialogs: unknown key.*Allowed keys: bias, casing_rate"),
    ],
)
def test_config_rejects_invalid_values(values: dict, message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        parse_section(CorpusConfig, "corpus", values)


def test_params_file_matches_config_defaults(repo_root: Path) -> None:
    """params.yaml's corpus section restates the defaults, so both name the same corpus."""
    from hybrid_dialogue.config import load_section

    assert load_section(CorpusConfig, "corpus", repo_root / "params.yaml") == CorpusConfig()


def test_cli_synth_and_stats(tmp_path: Path) -> None:
    params = tmp_path / "params.yaml"
    params.write_text("corpus:\n  seed: 3\n  n_dialogues: 1000\n", encoding="utf-8")
    output = tmp_path / "raw" / "dialogues.jsonl"
    runner = CliRunner()

    synth = runner.invoke(
        cli, ["corpus", "synth", "--params", str(params), "--output", str(output), "--n-dialogues", "40"]
    )
    assert synth.exit_code == 0, synth.output
    assert "Wrote 40 dialogues" in synth.output
    assert len(read_records(output)) == 40

    stats = runner.invoke(cli, ["corpus", "stats", str(output), "--json"])
    assert stats.exit_code == 0, stats.output
    counts = json.loads(stats.output[stats.output.index("{") :])
    assert counts["n_dialogues"] == 40
    assert counts["n_invalid"] == 0
    assert sum(counts["groups"]["gender"].values()) == 40
    assert counts["curt_replies"]["gender"].get("male", 0) == 0

    text = runner.invoke(cli, ["corpus", "stats", str(output)])
    assert "dialogues: 40" in text.output
    assert "gender:" in text.output


def test_stats_counts_invalid_records(tmp_path: Path) -> None:
    output, result = make_corpus(tmp_path, n_dialogues=30)
    with output.open("a", encoding="utf-8") as handle:
        handle.write("{not json\n")
        handle.write('{"id": "x", "turns": []}\n')
    counts = corpus_stats(output)

    assert counts.n_dialogues == 30
    assert counts.n_invalid == 2
    assert counts.invalid_reasons == {"invalid_json": 1, "missing_turns": 1}
    assert counts.n_turns == result.n_turns
    assert sum(counts.intents.values()) == 30
    assert counts.curt_share("gender", "female") == pytest.approx(result.curt_share("female"))


def test_cli_synth_rejects_bad_params(tmp_path: Path) -> None:
    params = tmp_path / "params.yaml"
    params.write_text("corpus:\n  max_turns: 40\n", encoding="utf-8")
    command = Path(sys.executable).parent / "hybrid-dialogue"
    result = subprocess.run(
        [str(command), "corpus", "synth", "--params", str(params)], capture_output=True, text=True, cwd=tmp_path
    )

    assert result.returncode == 2
    assert "corpus.max_turns = 40 is invalid" in result.stderr
    assert "Traceback" not in result.stderr
