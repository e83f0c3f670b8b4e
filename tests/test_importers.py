"""Corpus import from jsonl, csv, Bitext and twcs files, with quarantine and clear errors."""

from __future__ import annotations

import csv
import hashlib
import json
import tempfile
from pathlib import Path

import pytest
from click.testing import CliRunner

from hybrid_dialogue.cli.main import cli
from hybrid_dialogue.data.importers import (
    CorpusImportError,
    ImportOptions,
    default_quarantine_path,
    import_corpus,
)
from hybrid_dialogue.data.records import RawDataError, import_manifest_path, read_import_manifest
from hybrid_dialogue.data.schema import parse_dialogue


@pytest.fixture(autouse=True)
def system_tmp(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Move the system's temporary directory, where a failed import keeps its rejected records, into tmp_path."""
    directory = tmp_path / "system-tmp"
    directory.mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(directory))
    return directory


def snapshot(directory: Path) -> dict[str, bytes]:
    """Return every file under `directory` with its bytes, by relative path."""
    return {str(path.relative_to(directory)): path.read_bytes() for path in directory.rglob("*") if path.is_file()}


def read_jsonl(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]


def write_csv(path: Path, header: list[str], rows: list[list[str]]) -> Path:
    with path.open("w", encoding="utf-8", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(header)
        writer.writerows(rows)
    return path


def dialogue_line(dialogue_id: str, customer: str = "Where is my order?", agent: str = "It ships today.") -> str:
    record = {
        "id": dialogue_id,
        "turns": [{"role": "customer", "text": customer}, {"role": "agent", "text": agent}],
        "intent": "order_status",
        "metadata": {"gender": "female", "region": "north"},
    }
    return json.dumps(record)


@pytest.fixture
def messy_jsonl(tmp_path: Path) -> Path:
    """Two valid dialogues among every kind of malformed line. The comments give line numbers."""
    lines = [
        dialogue_line("a1").encode(),  # 1
        b'{"id": "broken", "turns": [',  # 2: invalid JSON
        dialogue_line("a2", customer="Ça marche? Danke schön").encode(),  # 3
        b"[1, 2, 3]",  # 4: not an object
        b'{"id": "no-turns", "turns": []}',  # 5
        b'{"id": "bot", "turns": [{"role": "bot", "text": "hi"}]}',  # 6: unknown role
        b'{"id": "latin1", "turns": [{"role": "customer", "text": "caf\xe9"}]}',  # 7: invalid UTF-8
        b"",  # 8: blank
        dialogue_line("a1", customer="same id again").encode(),  # 9: duplicate id
        b'{"id": "empty", "turns": [{"role": "customer", "text": "   "}]}',  # 10: empty text
    ]
    path = tmp_path / "messy.jsonl"
    path.write_bytes(b"\n".join(lines) + b"\n")
    return path


def test_jsonl_quarantines_malformed_lines(messy_jsonl: Path, tmp_path: Path) -> None:
    output = tmp_path / "raw" / "dialogues.jsonl"
    result = import_corpus(messy_jsonl, "jsonl", output)

    assert [record["id"] for record in read_jsonl(output)] == ["a1", "a2"]
    assert read_jsonl(output)[0] == parse_dialogue(json.loads(dialogue_line("a1"))).to_json_dict()
    assert read_jsonl(output)[1]["turns"][0]["text"] == "Ça marche? Danke schön"
    assert result.n_dialogues == 2
    assert result.records_read == 9
    assert result.skipped == {"blank_line": 1}
    assert result.n_quarantined == 7
    assert result.quarantine_path == default_quarantine_path(output)

    entries = read_jsonl(result.quarantine_path)
    assert [(entry["line"], entry["reason"]) for entry in entries] == [
        (2, "invalid_json"),
        (4, "not_an_object"),
        (5, "missing_turns"),
        (6, "unknown_role"),
        (7, "invalid_utf8"),
        (9, "duplicate_id"),
        (10, "empty_turn"),
    ]
    assert result.quarantine_reasons["invalid_json"] == 1
    assert all(entry["detail"] for entry in entries)
    assert "same id again" in entries[5]["excerpt"]


def test_quarantine_file_not_a_jsonl_glob(tmp_path: Path) -> None:
    output = tmp_path / "raw" / "dialogues.jsonl"
    assert default_quarantine_path(output).name == "dialogues.jsonl.quarantine"
    assert list(output.parent.glob("*.jsonl")) == []


def test_clean_reimport_removes_stale_quarantine(messy_jsonl: Path, tmp_path: Path) -> None:
    output = tmp_path / "dialogues.jsonl"
    first = import_corpus(messy_jsonl, "jsonl", output)
    assert first.quarantine_path.exists()

    clean = tmp_path / "clean.jsonl"
    clean.write_text(dialogue_line("b1") + "\n", encoding="utf-8")
    second = import_corpus(clean, "jsonl", output)

    assert second.quarantine_path is None
    assert not default_quarantine_path(output).exists()


def test_jsonl_with_byte_order_mark(tmp_path: Path) -> None:
    source = tmp_path / "bom.jsonl"
    source.write_bytes(b"\xef\xbb\xbf" + dialogue_line("c1").encode() + b"\n")
    result = import_corpus(source, "jsonl", tmp_path / "out.jsonl")

    assert result.n_dialogues == 1
    assert result.n_quarantined == 0


def test_csv_with_custom_columns(tmp_path: Path) -> None:
    source = write_csv(
        tmp_path / "chats.csv",
        ["ticket", "question", "answer", "topic", "gender", "region", "channel", "notes"],
        [
            ["t1", "Where is my parcel?", "It arrives Monday.", "order_status", "male", "west", "email", "x"],
            ["t2", "Line one\nline two", "Answered.", "", "female", "", "chat", "y"],
            ["t3", "No answer here", "", "refund", "female", "south", "chat", "z"],
            ["t4", "Fine", "Good.", "refund", "male", "east", "phone", "w"],
        ],
    )
    with source.open("a", encoding="utf-8") as handle:
        handle.write("t5,too,many,fields,male,east,chat,w,extra\n")
        handle.write("t6,too few\n")
    options = ImportOptions(
        customer_column="question",
        agent_column="answer",
        intent_column="topic",
        id_column="ticket",
        metadata_columns=("channel",),
    )
    output = tmp_path / "out.jsonl"
    result = import_corpus(source, "csv", output, options)
    records = read_jsonl(output)

    assert [record["id"] for record in records] == ["t1", "t2", "t4"]
    assert records[0]["metadata"] == {"channel": "email", "gender": "male", "region": "west"}
    assert records[0]["intent"] == "order_status"
    assert records[1]["turns"][0]["text"] == "Line one\nline two"
    assert records[1]["intent"] is None
    assert "region" not in records[1]["metadata"]
    assert "notes" not in records[0]["metadata"]

    entries = read_jsonl(result.quarantine_path)
    # Row t2 spans lines 3-4, so t3 starts on line 5.
    assert [(entry["line"], entry["reason"]) for entry in entries] == [
        (5, "empty_turn"),
        (7, "wrong_field_count"),
        (8, "wrong_field_count"),
    ]
    assert entries[1]["detail"] == "expected 8 fields, got 9"
    assert entries[2]["detail"] == "expected 8 fields, got 2"
    assert result.records_read == 6


def test_csv_default_ids_and_invalid_utf8(tmp_path: Path) -> None:
    source = tmp_path / "plain.csv"
    source.write_bytes(b"customer,agent\nhello,hi there\ncaf\xe9,ok\nbye,goodbye\n")
    output = tmp_path / "out.jsonl"
    result = import_corpus(source, "csv", output)

    assert [record["id"] for record in read_jsonl(output)] == ["plain-000001", "plain-000003"]
    assert [entry["reason"] for entry in read_jsonl(result.quarantine_path)] == ["invalid_utf8"]


def test_csv_missing_column_names_found_columns(tmp_path: Path) -> None:
    source = write_csv(tmp_path / "qa.csv", ["q", "a"], [["hi", "hello"]])
    options = ImportOptions(customer_column="question", agent_column="a")

    with pytest.raises(CorpusImportError, match=r"missing column\(s\) 'question' required by format 'csv'\. "
                       r"Columns found: 'q', 'a'\. Set the column names with --customer-column"):
        import_corpus(source, "csv", tmp_path / "out.jsonl", options)


def test_csv_parser_failure_names_row(tmp_path: Path) -> None:
    source = tmp_path / "long.csv"
    source.write_text('customer,agent\nhi,there\n"' + "x" * 140_000 + '",ok\n', encoding="utf-8")
    with pytest.raises(CorpusImportError, match=r"failed on the row that starts at line 3: field larger than"):
        import_corpus(source, "csv", tmp_path / "out.jsonl")


def test_csv_stray_quote_not_merged(tmp_path: Path) -> None:
    source = tmp_path / "quote.csv"
    source.write_text('customer,agent\n"fine","ok"\n"unterminated,ok\n"x","y"\n', encoding="utf-8")
    output = tmp_path / "out.jsonl"

    with pytest.raises(CorpusImportError, match=r"starts at line 3: ',' expected after '\"'\. Fix that row"):
        import_corpus(source, "csv", output)
    assert not output.exists()


def test_csv_quoted_newline_kept(tmp_path: Path) -> None:
    source = tmp_path / "multiline.csv"
    source.write_text('customer,agent\n"two\nlines",ok\n', encoding="utf-8")
    output = tmp_path / "out.jsonl"

    import_corpus(source, "csv", output)

    assert read_jsonl(output)[0]["turns"][0]["text"] == "two\nlines"


def test_csv_duplicate_header_rejected(tmp_path: Path) -> None:
    source = write_csv(tmp_path / "dup.csv", ["customer", "agent", "agent"], [["a", "b", "c"]])
    with pytest.raises(CorpusImportError, match=r"duplicate column name\(s\) agent"):
        import_corpus(source, "csv", tmp_path / "out.jsonl")


def test_empty_csv_rejected(tmp_path: Path) -> None:
    source = tmp_path / "empty.csv"
    source.write_text("", encoding="utf-8")
    with pytest.raises(CorpusImportError, match=r"empty\.csv is empty: expected a CSV header line"):
        import_corpus(source, "csv", tmp_path / "out.jsonl")


def test_missing_file_rejected(tmp_path: Path) -> None:
    with pytest.raises(CorpusImportError, match=r"input file not found: .*nope\.csv\. Check the path"):
        import_corpus(tmp_path / "nope.csv", "csv", tmp_path / "out.jsonl")


def test_directory_rejected(tmp_path: Path) -> None:
    with pytest.raises(CorpusImportError, match=r"input path is not a file"):
        import_corpus(tmp_path, "jsonl", tmp_path / "out.jsonl")


def test_unknown_format_rejected(tmp_path: Path) -> None:
    source = tmp_path / "a.xml"
    source.write_text("<a/>", encoding="utf-8")
    with pytest.raises(CorpusImportError, match=r"unknown format 'xml'; expected one of jsonl, csv, bitext, twcs"):
        import_corpus(source, "xml", tmp_path / "out.jsonl")


def test_wrong_format_keeps_output(tmp_path: Path, system_tmp: Path) -> None:
    """A CSV read as jsonl has no valid record: the import fails and the old output stays."""
    source = write_csv(tmp_path / "chats.csv", ["customer", "agent"], [["hi", "hello"], ["bye", "ciao"]])
    output = tmp_path / "raw" / "out.jsonl"
    output.parent.mkdir()
    output.write_text("previous corpus\n", encoding="utf-8")

    with pytest.raises(CorpusImportError, match=r"none of the 3 records .* is a valid dialogue in format 'jsonl' "
                       r"\(first problem: line 1, invalid_json") as raised:
        import_corpus(source, "jsonl", output)

    assert snapshot(output.parent) == {"out.jsonl": b"previous corpus\n"}
    rejected = raised.value.rejected_path
    assert rejected.name == "out.jsonl.quarantine"
    assert rejected.parent.parent == system_tmp
    assert str(rejected) in str(raised.value)
    assert len(read_jsonl(rejected)) == 3


def test_bitext_fixture_keeps_placeholders(tmp_path: Path) -> None:
    source = write_csv(
        tmp_path / "bitext.csv",
        ["flags", "instruction", "category", "intent", "response"],
        [
            ["B", "where is order {{Order Number}}", "ORDER", "track_order", "Order {{Order Number}} ships soon."],
            ["BL", "cancel my plan", "SUBSCRIPTION", "cancel_plan", "I have cancelled it."],
        ],
    )
    output = tmp_path / "out.jsonl"
    result = import_corpus(source, "bitext", output)
    records = read_jsonl(output)

    assert result.n_dialogues == 2
    assert records[0]["id"] == "bitext-000001"
    assert records[0]["turns"][0] == {"role": "customer", "text": "where is order {{Order Number}}"}
    assert records[0]["turns"][1]["text"] == "Order {{Order Number}} ships soon."
    assert records[0]["metadata"] == {"category": "ORDER", "flags": "B"}
    assert records[1]["intent"] == "cancel_plan"


def test_bitext_missing_column_suggests_format(tmp_path: Path) -> None:
    source = write_csv(tmp_path / "other.csv", ["customer", "agent", "intent"], [["a", "b", "c"]])
    with pytest.raises(CorpusImportError, match=r"missing column\(s\) 'instruction', 'response' required by format "
                       r"'bitext'\. Columns found: 'customer', 'agent', 'intent'\. Is the file in another format"):
        import_corpus(source, "bitext", tmp_path / "out.jsonl")


def test_real_bitext_file(bitext_csv: Path, tmp_path: Path) -> None:
    output = tmp_path / "bitext.jsonl"
    result = import_corpus(bitext_csv, "bitext", output)
    records = read_jsonl(output)

    assert result.records_read == 6480
    assert result.n_dialogues == 6480
    assert result.n_quarantined == 0
    assert len(result.intents) == 27
    assert len({record["intent"] for record in records}) == 27
    assert all(parse_dialogue(record) for record in records)
    assert records[0]["turns"][0]["text"] == "how can I cancel purchase 113542617735902?"
    assert records[0]["intent"] == "cancel_order"
    assert records[0]["metadata"]["category"] == "ORDER"
    assert records[0]["metadata"]["entity_value"] == "113542617735902"
    categories = {record["metadata"]["category"] for record in records}
    assert len(categories) == 11


TWCS_HEADER = ["tweet_id", "author_id", "inbound", "created_at", "text", "response_tweet_id", "in_response_to_tweet_id"]


def test_twcs_rebuilds_threads(tmp_path: Path) -> None:
    rows = [
        ["1", "cust1", "True", "Tue Oct 31 22:10:00 +0000 2017", "@Acme my order is late", "2", ""],
        ["2", "AcmeHelp", "False", "Tue Oct 31 22:12:00 +0000 2017", "@cust1 sorry! DM us the number", "3,4", "1.0"],
        # Tweet 4 comes first in the file but was written after tweet 3, so it is the branch.
        ["4", "cust1", "True", "Tue Oct 31 22:20:00 +0000 2017", "@AcmeHelp also damaged", "", "2.0"],
        ["3", "cust1", "True", "Tue Oct 31 22:15:00 +0000 2017", "@AcmeHelp done", "5", "2.0"],
        ["5", "cust1", "True", "Tue Oct 31 22:16:00 +0000 2017", "@AcmeHelp hello?", "6", "3.0"],
        ["6", "AcmeHelp", "False", "Tue Oct 31 22:30:00 +0000 2017", "@cust1 refund issued", "", "5.0"],
        ["10", "AcmeHelp", "False", "Wed Nov 01 10:00:00 +0000 2017", "@cust2 we saw your post", "11", ""],
        ["11", "cust2", "True", "Wed Nov 01 10:05:00 +0000 2017", "@AcmeHelp thanks", "", "10"],
        ["20", "cust3", "True", "Wed Nov 01 11:00:00 +0000 2017", "@Acme anyone there?", "", ""],
        ["30", "cust4", "True", "Wed Nov 01 12:00:00 +0000 2017", "@Acme reply to a lost tweet", "31", "999.0"],
        ["31", "AcmeHelp", "False", "Wed Nov 01 12:05:00 +0000 2017", "@cust4 happy to help", "", "30"],
        ["40", "cust5", "maybe", "Wed Nov 01 13:00:00 +0000 2017", "@Acme hi", "", ""],
        ["3", "cust1", "True", "Tue Oct 31 22:15:00 +0000 2017", "@AcmeHelp duplicate", "", "2.0"],
    ]
    source = write_csv(tmp_path / "twcs.csv", TWCS_HEADER, rows)
    output = tmp_path / "out.jsonl"
    result = import_corpus(source, "twcs", output)
    records = read_jsonl(output)

    assert [record["id"] for record in records] == ["twcs-1", "twcs-30"]
    assert records[0]["turns"] == [
        {"role": "customer", "text": "@Acme my order is late"},
        {"role": "agent", "text": "@cust1 sorry! DM us the number"},
        {"role": "customer", "text": "@AcmeHelp done @AcmeHelp hello?"},
        {"role": "agent", "text": "@cust1 refund issued"},
    ]
    assert records[0]["metadata"] == {"customer_id": "cust1", "company": "AcmeHelp"}
    assert records[0]["intent"] is None
    assert [turn["role"] for turn in records[1]["turns"]] == ["customer", "agent"]

    assert result.records_read == 13
    assert result.skipped == {"branch": 1, "no_company_reply": 1, "thread_starts_with_company": 2}
    entries = read_jsonl(result.quarantine_path)
    assert [(entry["line"], entry["reason"]) for entry in entries] == [
        (13, "invalid_inbound"),
        (14, "duplicate_tweet_id"),
    ]
    # Every tweet is accounted for: in a dialogue, skipped with a reason, or quarantined.
    tweets_in_dialogues = 5 + 2  # tweets 1, 2, 3, 5, 6 and 30, 31
    assert tweets_in_dialogues + sum(result.skipped.values()) + result.n_quarantined == result.records_read


def test_twcs_missing_column(tmp_path: Path) -> None:
    source = write_csv(tmp_path / "twcs.csv", TWCS_HEADER[:-1], [["1", "a", "True", "x", "hi", ""]])
    with pytest.raises(CorpusImportError, match=r"missing column\(s\) 'in_response_to_tweet_id' required by format"):
        import_corpus(source, "twcs", tmp_path / "out.jsonl")


def test_import_share_above_limit_fails(messy_jsonl: Path, tmp_path: Path, system_tmp: Path) -> None:
    # An earlier import left dialogues, a quarantine file and a manifest; the failed import keeps all three.
    earlier = tmp_path / "earlier.jsonl"
    earlier.write_text(dialogue_line("e1") + "\n{broken\n", encoding="utf-8")
    output = tmp_path / "raw" / "dialogues.jsonl"
    import_corpus(earlier, "jsonl", output)
    before = snapshot(output.parent)
    assert sorted(before) == ["dialogues.jsonl", "dialogues.jsonl.import.json", "dialogues.jsonl.quarantine"]

    with pytest.raises(CorpusImportError) as raised:
        import_corpus(messy_jsonl, "jsonl", output, ImportOptions(max_quarantine_share=0.05))
    message = str(raised.value)
    assert "quarantined 7 of 9 records" in message
    assert "(77.8%)" in message
    assert "max_quarantine_share = 0.05" in message
    assert "invalid_json 1" in message
    assert "The output was left as it was." in message

    assert snapshot(output.parent) == before
    rejected = raised.value.rejected_path
    assert str(rejected) in message
    assert rejected.parent.parent == system_tmp
    assert [entry["line"] for entry in read_jsonl(rejected)] == [2, 4, 5, 6, 7, 9, 10]


def test_failed_import_removes_created_directories(messy_jsonl: Path, tmp_path: Path) -> None:
    output = tmp_path / "new" / "raw" / "dialogues.jsonl"
    with pytest.raises(CorpusImportError, match="quarantined 7 of 9 records"):
        import_corpus(messy_jsonl, "jsonl", output, ImportOptions(max_quarantine_share=0.5))
    assert not (tmp_path / "new").exists()


def test_import_writes_manifest(messy_jsonl: Path, tmp_path: Path) -> None:
    output = tmp_path / "raw" / "dialogues.jsonl"
    result = import_corpus(messy_jsonl, "jsonl", output)

    assert result.manifest_path == import_manifest_path(output) == tmp_path / "raw" / "dialogues.jsonl.import.json"
    assert json.loads(result.manifest_path.read_text(encoding="utf-8")) == {
        "corpus_file": "dialogues.jsonl",
        "corpus_sha256": hashlib.sha256(output.read_bytes()).hexdigest(),
        "source_name": "messy.jsonl",
        "format": "jsonl",
        "records_read": 9,
        "dialogues": 2,
        "quarantined": 7,
        "quarantine_reasons": {
            "duplicate_id": 1, "empty_turn": 1, "invalid_json": 1, "invalid_utf8": 1, "missing_turns": 1,
            "not_an_object": 1, "unknown_role": 1,
        },
        "quarantine_file": "dialogues.jsonl.quarantine",
    }  # fmt: skip
    manifest = read_import_manifest(output)
    assert (manifest.records_read, manifest.quarantined) == (9, 7)


def test_import_manifest_of_changed_file_rejected(messy_jsonl: Path, tmp_path: Path) -> None:
    output = tmp_path / "raw" / "dialogues.jsonl"
    import_corpus(messy_jsonl, "jsonl", output)
    with output.open("a", encoding="utf-8") as handle:
        handle.write(dialogue_line("added-by-hand") + "\n")

    with pytest.raises(RawDataError, match=r"describes another version of dialogues\.jsonl: its SHA-256 differs"):
        read_import_manifest(output)

    import_manifest_path(output).write_text('{"corpus_file": "dialogues.jsonl"}', encoding="utf-8")
    with pytest.raises(RawDataError, match=r"dialogues\.jsonl\.import\.json is not a valid import manifest"):
        read_import_manifest(output)
    assert read_import_manifest(tmp_path / "never-imported.jsonl") is None


def test_import_share_at_limit_passes(messy_jsonl: Path, tmp_path: Path) -> None:
    result = import_corpus(messy_jsonl, "jsonl", tmp_path / "out.jsonl", ImportOptions(max_quarantine_share=7 / 9))
    assert result.n_dialogues == 2
    assert result.n_quarantined == 7


def test_import_share_limit_out_of_range(messy_jsonl: Path, tmp_path: Path) -> None:
    with pytest.raises(CorpusImportError, match=r"max_quarantine_share = 1\.5 is invalid: expected a share in \[0, 1\]"):
        import_corpus(messy_jsonl, "jsonl", tmp_path / "out.jsonl", ImportOptions(max_quarantine_share=1.5))


def test_cli_import_applies_preprocess_limit(messy_jsonl: Path, tmp_path: Path) -> None:
    params = tmp_path / "params.yaml"
    params.write_text("preprocess:\n  max_quarantine_share: 0.5\n", encoding="utf-8")
    output = tmp_path / "raw" / "dialogues.jsonl"
    arguments = ["corpus", "import", "--format", "jsonl", str(messy_jsonl), "--output", str(output),
                 "--params", str(params)]  # fmt: skip
    runner = CliRunner()

    rejected = runner.invoke(cli, arguments)
    assert rejected.exit_code == 1, rejected.output
    assert "quarantined 7 of 9 records" in rejected.output
    assert "(77.8%)" in rejected.output
    assert "max_quarantine_share = 0.5" in rejected.output
    assert "dialogues.jsonl.quarantine" in rejected.output
    assert "Traceback" not in rejected.output
    assert not output.parent.exists()

    # The option wins over the parameter file.
    accepted = runner.invoke(cli, [*arguments, "--max-quarantine-share", "0.8"])
    assert accepted.exit_code == 0, accepted.output
    assert "Quarantined 7 malformed records" in accepted.output
    assert "Warning: 77.8% of the records were quarantined, over preprocess.max_quarantine_share (50.0%)" in (
        accepted.output
    )

    out_of_range = runner.invoke(cli, [*arguments, "--max-quarantine-share", "2"])
    assert out_of_range.exit_code == 2
    assert "--max-quarantine-share" in out_of_range.output


def test_cli_import_reports_quarantine(messy_jsonl: Path, tmp_path: Path) -> None:
    output = tmp_path / "raw" / "dialogues.jsonl"
    arguments = ["corpus", "import", "--format", "jsonl", str(messy_jsonl), "--output", str(output),
                 "--max-quarantine-share", "1"]  # fmt: skip
    result = CliRunner().invoke(cli, arguments)

    assert result.exit_code == 0, result.output
    assert "Imported 2 dialogues" in result.output
    assert "Quarantined 7 malformed records" in result.output
    assert "dialogues.jsonl.quarantine" in result.output


def test_cli_import_error_without_traceback(tmp_path: Path) -> None:
    source = write_csv(tmp_path / "qa.csv", ["q", "a"], [["hi", "hello"]])
    runner = CliRunner()

    missing = runner.invoke(cli, ["corpus", "import", "--format", "csv", str(source), "--output", str(tmp_path / "o")])
    assert missing.exit_code == 1
    assert "missing column(s) 'customer', 'agent'" in missing.output
    assert "Traceback" not in missing.output

    mapped = runner.invoke(
        cli,
        ["corpus", "import", "--format", "csv", str(source), "--output", str(tmp_path / "o.jsonl"),
         "--customer-column", "q", "--agent-column", "a"],
    )  # fmt: skip
    assert mapped.exit_code == 0, mapped.output
    assert "Imported 1 dialogues" in mapped.output

    misuse = runner.invoke(cli, ["corpus", "import", "--format", "bitext", str(source), "--intent-column", "x"])
    assert misuse.exit_code == 2
    assert "--intent-column: column options are valid only with --format csv" in misuse.output
