"""A tiny processed dataset with names, gendered words and a curt-reply bias, for the fairness and SHAP tests.

It follows the layout of `data/processed/` like `helpers_data.write_tiny_processed`,
but its customer messages introduce the customer by name ("hi, i'm maria.")
and some mention a spouse ("my husband asked me to write."), and half of the
replies to female customers are curt, as in the default synthetic corpus.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd

from helpers_data import make_tiny_pairs, tiny_max_len
from hybrid_dialogue.data.dataset import SPLITS
from hybrid_dialogue.data.text import TextRules
from hybrid_dialogue.data.tokenizer import TextTokenizer

CURT_REPLY = "no idea."
SPOUSE = {"female": "husband", "male": "wife"}


def make_named_pairs(n_pairs: int, seed: int = 0) -> pd.DataFrame:
    """Return tiny pairs whose messages name the customer, with curt replies to half the female customers."""
    pairs = make_tiny_pairs(n_pairs, seed)
    for index, row in pairs.iterrows():
        message = row["customer_text"]
        if index % 3 != 2:
            message = f"hi, i'm {row['customer_name']}. {message}"
        if index % 4 == 0:
            message += f". my {SPOUSE[row['gender']]} asked me to write."
        pairs.loc[index, ["customer_text", "input_text"]] = message
        if row["gender"] == "female" and index % 2 == 0:
            pairs.loc[index, "agent_text"] = CURT_REPLY
    return pairs


def write_named_processed(directory: str | Path, n_pairs: int = 160, seed: int = 0, max_len: int | None = None) -> Path:
    """Write the named pairs as a processed dataset (75% train, 12.5% validation, 12.5% test) and return it."""
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    max_len = max_len or tiny_max_len()
    pairs = make_named_pairs(n_pairs, seed)

    tokenizer = TextTokenizer.fit(list(pairs["input_text"]) + list(pairs["agent_text"]), vocab_size=300, min_frequency=1)
    tokenizer.save(directory / "tokenizer.json")
    (directory / "text_rules.json").write_text(json.dumps(TextRules().model_dump(mode="json")), encoding="utf-8")

    bounds = np.cumsum([0, int(n_pairs * 0.75), int(n_pairs * 0.125)]).tolist() + [n_pairs]
    rows = {}
    for split, start, stop in zip(SPLITS, bounds[:-1], bounds[1:]):
        frame = pairs.iloc[start:stop].reset_index(drop=True)
        input_ids, _ = tokenizer.encode_batch(list(frame["input_text"]), max_len)
        response_ids, _ = tokenizer.encode_batch(list(frame["agent_text"]), max_len)
        frame.to_parquet(directory / f"{split}.parquet", index=False)
        np.savez(directory / f"{split}.npz", input_ids=input_ids, response_ids=response_ids)
        rows[split] = len(frame)

    manifest = {"max_len": max_len, "vocab_size": tokenizer.vocab_size, "tokenizer_fingerprint": tokenizer.fingerprint,
                "rows": rows}
    (directory / "manifest.json").write_text(json.dumps(manifest, indent=2), encoding="utf-8")
    return directory
