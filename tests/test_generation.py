"""ResponseGenerator and `hybrid-dialogue generate --model-dir` on a tiny untrained bundle."""

from __future__ import annotations

import json
import re
import shutil
from pathlib import Path

import pytest
from click.testing import CliRunner

from hybrid_dialogue.cli.main import cli
from hybrid_dialogue.data.text import clean_text
from hybrid_dialogue.generation import (
    MODEL_FILE,
    TOKENIZER_FILE,
    BundleError,
    GeneratedResponse,
    ResponseGenerator,
    export_bundle,
)
from hybrid_dialogue.models.io import TokenizerMismatchError

from helpers_registry import copy_bundle_as_processed, fit_tokenizer, write_tiny_bundle


@pytest.fixture(scope="module")
def bundle(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_tiny_bundle(tmp_path_factory.mktemp("bundle"))


@pytest.fixture(scope="module")
def generator(bundle: Path) -> ResponseGenerator:
    return ResponseGenerator.from_directory(bundle)


def test_respond_one_response_per_message(generator):
    responses = generator.respond(["where is my order 12345", "cancel my order please"])
    assert len(responses) == 2
    for response in responses:
        assert isinstance(response, GeneratedResponse)
        assert isinstance(response.text, str)
        assert 0.0 <= response.quality <= 1.0


def test_respond_deterministic(generator):
    first = generator.respond(["how do i change my delivery address"])
    second = generator.respond(["how do i change my delivery address"])
    assert first == second


def test_respond_applies_text_rules(generator):
    # Normalisation and redaction run before tokenizing: messages that differ
    # only in case, spacing and the e-mail address clean to the same text.
    first = generator.respond(["Please  send the invoice to john.doe@example.com"])
    second = generator.respond(["please send the INVOICE to mary+shop@mail.example.org "])
    assert first == second
    cleaned, _ = clean_text("Please  send the invoice to john.doe@example.com", generator.text_rules)
    assert cleaned == "please send the invoice to [EMAIL]"


def test_respond_more_messages_than_one_batch(generator, monkeypatch):
    monkeypatch.setattr("hybrid_dialogue.generation.BATCH_SIZE", 2)
    messages = ["where is my order", "cancel my order", "send an invoice", "change my address", "hello"]
    batched = generator.respond(messages)
    single = [generator.respond([message])[0] for message in messages]
    assert [response.text for response in batched] == [response.text for response in single]
    # oneDNN kernels may sum in another order for another batch shape.
    assert [response.quality for response in batched] == pytest.approx([response.quality for response in single])


@pytest.mark.parametrize(
    ("messages", "pattern"),
    [
        ([""], r"message 0 is empty"),
        (["ok", "   \n"], r"message 1 is empty"),
        (["\u200b\u200b"], r"message 0 is empty once invisible and control characters are removed"),
        (["x" * 2001], r"message 0 has 2001 characters, over the limit of 2000"),
        ([None], r"message 0 is NoneType None, not text"),
        ([float("nan")], r"message 0 is float NaN \(a missing value\), not text"),
        ([12345], r"message 0 is int 12345, not text"),
        (["bad \udcff byte"], r"message 0 is not valid UTF-8 text"),
        ([], r"no messages given"),
        ("where is my order", r"expected a list of messages"),
    ],
)
def test_respond_rejects_invalid_input(generator, messages, pattern):
    with pytest.raises(ValueError, match=pattern):
        generator.respond(messages)


def test_bundle_missing_file(bundle, tmp_path):
    partial = tmp_path / "partial"
    shutil.copytree(bundle, partial)
    (partial / TOKENIZER_FILE).unlink()
    with pytest.raises(BundleError, match="tokenizer.json"):
        ResponseGenerator.from_directory(partial)


def test_bundle_other_tokenizer_rejected(bundle, tmp_path):
    swapped = tmp_path / "swapped"
    shutil.copytree(bundle, swapped)
    fit_tokenizer(["completely different words here"] * 5, vocab_size=60).save(swapped / TOKENIZER_FILE)
    with pytest.raises(TokenizerMismatchError, match="tokenizer mismatch"):
        ResponseGenerator.from_directory(swapped)


def test_export_bundle_round_trip(bundle, generator, tmp_path):
    model, processed = copy_bundle_as_processed(bundle, tmp_path)
    exported = export_bundle(model, processed, tmp_path / "exported")
    assert (exported / MODEL_FILE).is_file()
    message = ["where is my order 12345"]
    assert ResponseGenerator.from_directory(exported).respond(message) == generator.respond(message)


def test_export_bundle_missing_inputs(tmp_path):
    with pytest.raises(BundleError, match="Run `dvc repro`"):
        export_bundle(tmp_path / "none.keras", tmp_path, tmp_path / "out")


def test_generate_cli_message(bundle, generator):
    result = CliRunner().invoke(cli, ["generate", "--model-dir", str(bundle), "Where is my order 12345?"])
    assert result.exit_code == 0, result.output
    expected = generator.respond(["Where is my order 12345?"])[0]
    assert f"quality score: {expected.quality:.3f}" in result.output


def test_respond_decoding_choice(bundle, generator):
    # A separate generator: setting an inventory must not change the shared fixture.
    with_inventory = ResponseGenerator.from_directory(bundle)
    reply_ids, _ = with_inventory.tokenizer.encode_batch(["happy to help with that."], with_inventory.max_len)
    with_inventory.model.set_response_inventory(reply_ids)
    message = ["where is my order 12345"]

    reply_text = with_inventory.tokenizer.decode_batch(reply_ids)[0]
    assert with_inventory.respond(message)[0].text == reply_text
    assert with_inventory.respond(message, decoding="inventory")[0].text == reply_text
    assert with_inventory.respond(message, decoding="free") == generator.respond(message)


def test_generate_cli_decoding_option(bundle, generator):
    message = "Where is my order 12345?"
    free = CliRunner().invoke(cli, ["generate", "--model-dir", str(bundle), "--decoding", "free", message])
    assert free.exit_code == 0, free.output
    assert free.output.splitlines()[0] == generator.respond([message])[0].text

    # The tiny bundle's model has no inventory, so asking for one is a usage error naming the fix.
    inventory = CliRunner().invoke(cli, ["generate", "--model-dir", str(bundle), "--decoding", "inventory", message])
    assert inventory.exit_code == 2
    assert "no response inventory" in inventory.output
    assert "--decoding free" in inventory.output


def test_generate_cli_file_writes_jsonl(bundle, generator, tmp_path):
    messages = ["where is my order 12345", "I want to cancel", "send me the invoice"]
    source = tmp_path / "messages.txt"
    source.write_text("\n".join(messages) + "\n\n  \n", encoding="utf-8")  # blank lines at the end are ignored
    output = tmp_path / "responses.jsonl"

    result = CliRunner().invoke(
        cli, ["generate", "--model-dir", str(bundle), "--file", str(source), "--output", str(output)]
    )
    assert result.exit_code == 0, result.output
    rows = [json.loads(line) for line in output.read_text(encoding="utf-8").splitlines()]
    assert [row["customer_message"] for row in rows] == messages
    expected = generator.respond(messages)
    assert [row["response"] for row in rows] == [response.text for response in expected]
    assert [row["quality_score"] for row in rows] == pytest.approx([response.quality for response in expected])


@pytest.mark.parametrize(
    ("content", "pattern"),
    [
        (b"where is my order\n\nhello\n", r"line 2 is empty"),
        (b"fine\n" + b"x" * 2001 + b"\n", r"line 2 has 2001 characters, over the limit of 2000"),
        (b"caf\xe9 au lait\n", r"line 1 is not valid UTF-8 text \(invalid continuation byte\): save the file as UTF-8"),
        (b"\x00\x01binary\n", r"line 1 contains NUL bytes"),
        (b"", r"is empty: write one customer message per line"),
        (b"\n \n", r"is empty: write one customer message per line"),
    ],
)
def test_generate_cli_bad_file_exit_2(bundle, tmp_path, content, pattern):
    source = tmp_path / "messages.txt"
    source.write_bytes(content)
    result = CliRunner().invoke(cli, ["generate", "--model-dir", str(bundle), "--file", str(source)])
    assert result.exit_code == 2
    assert re.search(pattern, result.output), result.output


def test_generate_cli_lists_every_bad_line(tmp_path):
    # 23 empty lines, one line of Latin-1 and one with a NUL byte among valid messages. The model
    # directory does not exist: these problems are reported before any model is loaded.
    lines = [b"where is my order"]
    lines += [b"  " if number % 2 else b"hello" for number in range(46)]  # empty at lines 3, 5, ..., 47
    lines += [b"caf\xe9", b"nul\x00byte", b"thanks"]  # lines 48, 49, 50
    source = tmp_path / "messages.txt"
    source.write_bytes(b"\n".join(lines) + b"\n")

    result = CliRunner().invoke(cli, ["generate", "--model-dir", str(tmp_path / "no-model"), "--file", str(source)])

    assert result.exit_code == 2
    assert f"{source}: 25 of 50 lines are invalid, so no response was generated" in result.output
    listed = re.findall(r"^  line (\d+) ", result.output, flags=re.MULTILINE)
    assert listed == [str(number) for number in range(3, 42, 2)]  # the first 20 invalid lines
    assert "  line 3 is empty ('  '): pass a non-empty customer message" in result.output
    assert "  and 5 more invalid lines" in result.output
    assert "line 48" not in result.output
    assert "Fix these lines and run the command again." in result.output
    assert "model directory not found" not in result.output


def test_generate_cli_lists_lines_over_model_limit(bundle, tmp_path):
    source = tmp_path / "messages.txt"
    source.write_text("\n".join(["hello", "x" * 2001, "fine", "y" * 3000, "\u200b"]) + "\n", encoding="utf-8")
    output = tmp_path / "responses.jsonl"

    result = CliRunner().invoke(
        cli, ["generate", "--model-dir", str(bundle), "--file", str(source), "--output", str(output)]
    )

    assert result.exit_code == 2
    assert "3 of 5 lines are invalid" in result.output
    assert "  line 2 has 2001 characters, over the limit of 2000" in result.output
    assert "  line 4 has 3000 characters, over the limit of 2000" in result.output
    assert "  line 5 is empty once invisible and control characters are removed" in result.output
    assert "more invalid lines" not in result.output
    assert not output.exists()


def test_generate_cli_lists_all_kinds_in_one_run(bundle, tmp_path):
    source = tmp_path / "messages.txt"
    source.write_bytes(b"ok\n\nok\n" + b"a" * 2500 + b"\n\x01\x02\n")

    result = CliRunner().invoke(cli, ["generate", "--model-dir", str(bundle), "--file", str(source)])

    assert result.exit_code == 2
    assert "3 of 5 lines are invalid" in result.output
    assert re.findall(r"^  line (\d+) ", result.output, flags=re.MULTILINE) == ["2", "4", "5"]
    assert "  line 4 has 2500 characters, over the limit of 2000" in result.output


@pytest.mark.parametrize(
    ("message", "pattern"),
    [("", "MESSAGE is empty"), ("   ", "MESSAGE is empty"), ("y" * 5000, "MESSAGE has 5000 characters, over the limit of 2000")],
)
def test_generate_cli_bad_message_exit_2(bundle, message, pattern):
    result = CliRunner().invoke(cli, ["generate", "--model-dir", str(bundle), message])
    assert result.exit_code == 2
    assert pattern in result.output


def test_generate_cli_usage_errors(bundle, tmp_path):
    runner = CliRunner()
    neither = runner.invoke(cli, ["generate", "--model-dir", str(bundle)])
    assert neither.exit_code == 2
    assert "pass either one MESSAGE or --file FILE" in neither.output

    missing = runner.invoke(cli, ["generate", "--model-dir", str(tmp_path / "nothing"), "hello"])
    assert missing.exit_code == 1
    assert "model directory not found" in missing.output


def test_bundle_path_to_model_file(bundle):
    with pytest.raises(BundleError, match="is a file, but a model bundle is a directory containing model.keras"):
        ResponseGenerator.from_directory(bundle / "model.keras")
