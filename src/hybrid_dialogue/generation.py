"""Generate agent responses to raw customer messages with a trained model.

The generator applies the text pipeline of training: the same `clean_text`
rules (normalisation and redaction), the same tokenizer and the same
`max_len`. The CLI, the MLflow pyfunc model and the tests all go through
`ResponseGenerator`, so a served model and `hybrid-dialogue generate` return
the same response to the same message.

A bundle is a directory that contains everything a generator needs, with
fixed file names (`BUNDLE_FILES`). The registered MLflow model carries the
same four files as its artifacts.
"""

from __future__ import annotations

import json
import logging
import math
import shutil
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from hybrid_dialogue.config import ConfigError, parse_section

logger = logging.getLogger(__name__)

MODEL_FILE = "model.keras"
TOKENIZER_FILE = "tokenizer.json"
TEXT_RULES_FILE = "text_rules.json"
MANIFEST_FILE = "manifest.json"
BUNDLE_FILES = (MODEL_FILE, TOKENIZER_FILE, TEXT_RULES_FILE, MANIFEST_FILE)

# Maximum length of one customer message, in characters. Longer input is
# rejected rather than cut, so that a caller notices it. A manifest that
# records `max_message_chars` (the limit preprocessing applied) overrides it.
DEFAULT_MAX_MESSAGE_CHARS = 2000

# Messages per model call. Bounds memory for `--file` inputs of any length:
# the output probabilities are (batch, max_len, vocab) float32.
BATCH_SIZE = 256


class BundleError(FileNotFoundError):
    """A model bundle that is missing files or cannot be loaded."""


@dataclass(frozen=True)
class GeneratedResponse:
    """One generated agent response and the discriminator's quality score in [0, 1]."""

    text: str
    quality: float


class ResponseGenerator:
    """Generates agent responses to raw customer messages with a `HybridDialogueModel`."""

    def __init__(
        self,
        model: Any,
        tokenizer: Any,
        text_rules: Any,
        max_len: int,
        max_message_chars: int = DEFAULT_MAX_MESSAGE_CHARS,
    ) -> None:
        self.model = model
        self.tokenizer = tokenizer
        self.text_rules = text_rules
        self.max_len = max_len
        self.max_message_chars = max_message_chars

    @classmethod
    def from_files(
        cls, model_path: str | Path, tokenizer_path: str | Path, text_rules_path: str | Path, manifest_path: str | Path
    ) -> ResponseGenerator:
        """Load a generator from its four files.

        Raises `BundleError` for a missing file, `ConfigError` for invalid
        text rules, and the model loader's `TokenizerMismatchError` when the
        tokenizer is not the one the model was trained with.
        """
        from hybrid_dialogue.data.tokenizer import TextTokenizer
        from hybrid_dialogue.models.io import load_model

        paths = [Path(path) for path in (model_path, tokenizer_path, text_rules_path, manifest_path)]
        missing = [str(path) for path in paths if not path.is_file()]
        if missing:
            raise BundleError(f"model bundle incomplete, file(s) not found: {', '.join(missing)}")
        model_path, tokenizer_path, text_rules_path, manifest_path = paths

        manifest = _read_json(manifest_path)
        if not isinstance(manifest.get("max_len"), int) or manifest["max_len"] < 3:
            raise BundleError(
                f"{manifest_path}: max_len = {manifest.get('max_len')!r} is invalid, expected an integer >= 3. "
                "Rerun `dvc repro preprocess` to rewrite the manifest."
            )
        tokenizer = TextTokenizer.load(tokenizer_path)
        model = load_model(model_path, tokenizer=tokenizer)
        if model.architecture.max_len != manifest["max_len"]:
            raise BundleError(
                f"{manifest_path} sets max_len {manifest['max_len']}, but {model_path} was built for "
                f"max_len {model.architecture.max_len}: use the processed data the model was trained on"
            )
        return cls(
            model=model,
            tokenizer=tokenizer,
            text_rules=load_text_rules(text_rules_path),
            max_len=manifest["max_len"],
            max_message_chars=int(manifest.get("max_message_chars", DEFAULT_MAX_MESSAGE_CHARS)),
        )

    @classmethod
    def from_directory(cls, path: str | Path) -> ResponseGenerator:
        """Load a bundle directory, or a downloaded MLflow model whose `artifacts/` is a bundle."""
        path = Path(path)
        if path.is_file():
            raise BundleError(
                f"{path} is a file, but a model bundle is a directory containing {', '.join(BUNDLE_FILES)}. "
                "Pass that directory, or a downloaded MLflow model directory."
            )
        if not path.is_dir():
            raise BundleError(f"model directory not found: {path}")
        if (path / "MLmodel").is_file() and (path / "artifacts").is_dir():
            path = path / "artifacts"
        return cls.from_files(*(path / name for name in BUNDLE_FILES))

    def respond(self, messages: Sequence[Any], decoding: str | None = None) -> list[GeneratedResponse]:
        """Generate one response per message, in order.

        Raises `ValueError` naming the first invalid message (not text,
        empty, or longer than `max_message_chars`) before any model call.
        Each message is encoded on its own, with no previous agent turn as
        context, like the first exchange of a dialogue in training.
        `decoding` is passed to `HybridDialogueModel.respond`: "inventory",
        "free", or None for the model's default.
        """
        from hybrid_dialogue.data.text import clean_text

        self.validate(messages)
        cleaned = [clean_text(message, self.text_rules)[0] for message in messages]
        for index, text in enumerate(cleaned):
            if not text:
                raise ValueError(_empty_once_cleaned(index, messages[index]))
        responses: list[GeneratedResponse] = []
        for start in range(0, len(cleaned), BATCH_SIZE):
            responses.extend(self._respond_batch(cleaned[start : start + BATCH_SIZE], decoding))
        return responses

    def validate(self, messages: Sequence[Any]) -> None:
        """Raise `ValueError` naming the first message that is not non-empty text within the length limit."""
        if isinstance(messages, str):
            raise ValueError("expected a list of messages, got one string: wrap it in a list")
        if len(messages) == 0:
            raise ValueError("no messages given: pass at least one customer message")
        for index, message in enumerate(messages):
            validate_message(message, index, self.max_message_chars)

    def invalid_messages(self, messages: Sequence[Any]) -> list[str]:
        """Return one error for each message that `respond` would reject, in order, or [] when all are valid.

        Each error starts with `message N`, as the `ValueError` of `respond` does.
        """
        from hybrid_dialogue.data.text import clean_text

        errors = []
        for index, message in enumerate(messages):
            try:
                validate_message(message, index, self.max_message_chars)
            except ValueError as error:
                errors.append(str(error))
                continue
            if not clean_text(message, self.text_rules)[0]:
                errors.append(_empty_once_cleaned(index, message))
        return errors

    def _respond_batch(self, cleaned: list[str], decoding: str | None) -> list[GeneratedResponse]:
        input_ids, truncated = self.tokenizer.encode_batch(cleaned, self.max_len)  # (batch, max_len) int32
        if truncated.any():
            logger.warning(
                "%d of %d messages exceed %d tokens and were cut to fit the model's max_len",
                int(truncated.sum()), len(cleaned), self.max_len - 2,
            )
        outputs = self.model.respond(input_ids, decoding=decoding)
        texts = self.tokenizer.decode_batch(_to_numpy(outputs["response_ids"]))
        qualities = _to_numpy(outputs["quality"]).reshape(-1)  # (batch,)
        return [GeneratedResponse(text=text, quality=float(quality)) for text, quality in zip(texts, qualities)]


def validate_message(message: Any, index: int, max_chars: int) -> None:
    """Raise `ValueError` unless `message` is non-empty text of at most `max_chars` characters."""
    if not isinstance(message, str):
        description = repr(message)
        if isinstance(message, float) and math.isnan(message):
            description = "NaN (a missing value)"
        raise ValueError(
            f"message {index} is {type(message).__name__} {description}, not text: "
            "pass the customer message as a string"
        )
    try:
        message.encode("utf-8")
    except UnicodeEncodeError as error:
        # Lone surrogates: Python's stand-in for undecodable bytes in argv and file names.
        raise ValueError(
            f"message {index} is not valid UTF-8 text (invalid character at position {error.start}): "
            "pass the customer message as UTF-8 text"
        ) from None
    if not message.strip():
        raise ValueError(f"message {index} is empty ({message!r}): pass a non-empty customer message")
    if len(message) > max_chars:
        raise ValueError(
            f"message {index} has {len(message)} characters, over the limit of {max_chars}: "
            "shorten it or split it into several messages"
        )


def _empty_once_cleaned(index: int, message: str) -> str:
    return (
        f"message {index} is empty once invisible and control characters are removed "
        f"({message!r}): pass a non-empty customer message"
    )


def load_text_rules(path: str | Path) -> Any:
    """Load the `TextRules` that preprocessing saved, with errors that name the file."""
    from hybrid_dialogue.data.text import TextRules

    return parse_section(TextRules, "text_rules", _read_json(Path(path)), source=str(path))


def export_bundle(model_path: str | Path, processed_dir: str | Path, output_dir: str | Path) -> Path:
    """Copy a trained model and the processed data's tokenizer, text rules and manifest into a bundle directory."""
    processed_dir = Path(processed_dir)
    sources = {
        MODEL_FILE: Path(model_path),
        TOKENIZER_FILE: processed_dir / TOKENIZER_FILE,
        TEXT_RULES_FILE: processed_dir / TEXT_RULES_FILE,
        MANIFEST_FILE: processed_dir / MANIFEST_FILE,
    }
    missing = [str(source) for source in sources.values() if not source.is_file()]
    if missing:
        raise BundleError(
            f"cannot build a model bundle, file(s) not found: {', '.join(missing)}. "
            "Run `dvc repro` to produce the model and the processed data."
        )
    output_dir = Path(output_dir)
    output_dir.mkdir(parents=True, exist_ok=True)
    for name, source in sources.items():
        shutil.copy2(source, output_dir / name)
    return output_dir


def _read_json(path: Path) -> dict[str, Any]:
    try:
        payload = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError as error:
        raise BundleError(f"file not found: {path}") from error
    except (json.JSONDecodeError, UnicodeDecodeError) as error:
        raise ConfigError(f"{path} is not valid JSON: {error}") from error
    if not isinstance(payload, dict):
        raise ConfigError(f"{path} must contain a JSON object, got {type(payload).__name__}")
    return payload


def _to_numpy(value: Any) -> Any:
    import numpy as np

    return value.numpy() if hasattr(value, "numpy") else np.asarray(value)
