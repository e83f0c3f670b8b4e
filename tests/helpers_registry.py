"""Tiny model bundles and metric files for the generation and registry tests.

The model is untrained (random weights of the `tiny` preset): the tests check
plumbing and determinism, not response quality.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

from hybrid_dialogue.data.text import TextRules
from hybrid_dialogue.data.tokenizer import TextTokenizer
from hybrid_dialogue.generation import MANIFEST_FILE, MODEL_FILE, TEXT_RULES_FILE, TOKENIZER_FILE
from hybrid_dialogue.models.config import load_model_config
from hybrid_dialogue.models.io import build_model, save_model

REPO_ROOT = Path(__file__).resolve().parents[1]

TEXTS = [
    "where is my order 12345",
    "i want to cancel my order",
    "how do i change my delivery address",
    "your order has shipped and arrives tomorrow",
    "i have cancelled your order and refunded the payment",
    "you can change the address in your account settings",
    "please send me an invoice for my purchase",
    "the invoice is attached to your confirmation email",
] * 3


def fit_tokenizer(texts: list[str] = TEXTS, vocab_size: int = 120) -> TextTokenizer:
    return TextTokenizer.fit(texts, vocab_size=vocab_size, min_frequency=1)


def write_tiny_processed(directory: Path, tokenizer: TextTokenizer | None = None, preset: str = "tiny") -> Path:
    """Write the processed-data files a bundle needs: tokenizer, text rules, manifest."""
    tokenizer = tokenizer or fit_tokenizer()
    max_len = load_model_config(REPO_ROOT / "params.yaml", {"preset": preset}).sizes.max_len
    directory.mkdir(parents=True, exist_ok=True)
    tokenizer.save(directory / TOKENIZER_FILE)
    (directory / TEXT_RULES_FILE).write_text(json.dumps(TextRules().model_dump(mode="json")), encoding="utf-8")
    manifest = {"max_len": max_len, "vocab_size": tokenizer.vocab_size, "tokenizer_fingerprint": tokenizer.fingerprint}
    (directory / MANIFEST_FILE).write_text(json.dumps(manifest), encoding="utf-8")
    return directory


def write_tiny_model(path: Path, tokenizer: TextTokenizer, seed: int = 0, preset: str = "tiny") -> Path:
    config = load_model_config(REPO_ROOT / "params.yaml", {"preset": preset})
    model = build_model(config.architecture(tokenizer.vocab_size), tokenizer.fingerprint, seed=seed)
    save_model(model, path)
    return path


def write_tiny_bundle(directory: Path, seed: int = 0, preset: str = "tiny") -> Path:
    """Write a complete bundle directory: an untrained model of `preset` plus tokenizer, text rules and manifest."""
    tokenizer = fit_tokenizer()
    write_tiny_processed(directory, tokenizer, preset=preset)
    write_tiny_model(directory / MODEL_FILE, tokenizer, seed=seed, preset=preset)
    return directory


def copy_bundle_as_processed(bundle: Path, root: Path) -> tuple[Path, Path]:
    """Split a bundle into a model file and a processed-data directory, as the pipeline lays them out."""
    processed = root / "processed"
    processed.mkdir(parents=True, exist_ok=True)
    for name in (TOKENIZER_FILE, TEXT_RULES_FILE, MANIFEST_FILE):
        shutil.copy(bundle / name, processed / name)
    model = root / "models" / "hybrid.keras"
    model.parent.mkdir(parents=True, exist_ok=True)
    shutil.copy(bundle / MODEL_FILE, model)
    return model, processed


def write_evaluate_metrics(path: Path, bleu: float, retrieval_bleu: float, relevance: float = 0.5) -> Path:
    """Write an `evaluate.json` in the layout of the evaluate stage, with the given headline numbers."""
    payload = {
        "model": {"bleu": bleu, "relevance": relevance, "rougeL": 0.1, "perplexity": 50.0},
        "retrieval": {"bleu": retrieval_bleu, "relevance": 0.9},
        "constant": {"bleu": 1.0},
    }
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(payload), encoding="utf-8")
    return path
