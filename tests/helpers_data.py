"""A tiny processed dataset in the layout of `data/processed/`, for tests of any stage after preprocess.

`write_tiny_processed(directory)` writes what `preprocess` writes (see
`hybrid_dialogue.data.dataset`): a fitted tokenizer, the text rules, the
three splits as parquet and npz, and the manifest. The exchanges are short
customer-support pairs over five intents, with customer names and gender
and region columns, lower-cased as preprocessing leaves them.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd

from hybrid_dialogue.data.dataset import PAIR_COLUMNS, SPLITS
from hybrid_dialogue.data.text import TextRules
from hybrid_dialogue.data.tokenizer import TextTokenizer
from hybrid_dialogue.models.config import load_model_config

REPO_ROOT = Path(__file__).resolve().parents[1]

# intent -> (customer message templates, agent response templates). `{item}`
# and `{day}` vary per pair, so the model sees related but not identical texts.
EXCHANGES = {
    "order_status": (
        ["where is my order of the {item}", "has my {item} shipped yet", "my {item} has not arrived"],
        ["your {item} shipped and arrives on {day}", "the {item} is on its way and arrives on {day}"],
    ),
    "cancel_order": (
        ["please cancel my order of the {item}", "i want to cancel the {item} i ordered"],
        ["i have cancelled your order of the {item}", "your {item} order is cancelled and refunded"],
    ),
    "refund": (
        ["i want a refund for the {item}", "can i get my money back for the {item}"],
        ["your refund for the {item} will arrive by {day}", "i have refunded the {item} to your card"],
    ),
    "change_address": (
        ["how do i change the delivery address for my {item}", "i moved, please update my address"],
        ["you can change the address in your account settings", "i have updated the address for your {item}"],
    ),
    "invoice": (
        ["please send me an invoice for the {item}", "where can i find the invoice for my {item}"],
        ["the invoice for your {item} is in your email", "i have sent the invoice for the {item} to [EMAIL]"],
    ),
}
ITEMS = ("laptop", "phone", "headphones", "charger", "desk lamp", "backpack")
DAYS = ("monday", "tuesday", "friday", "saturday")
NAMES = (("maria", "female"), ("james", "male"), ("aisha", "female"), ("tom", "male"))
REGIONS = ("north", "south", "east", "west")


def tiny_max_len() -> int:
    """Return `max_len` of the `tiny` preset in the repository's params.yaml."""
    return load_model_config(REPO_ROOT / "params.yaml", {"preset": "tiny"}).sizes.max_len


def make_tiny_pairs(n_pairs: int = 96, seed: int = 0) -> pd.DataFrame:
    """Return `n_pairs` exchanges with every column of `PAIR_COLUMNS`, drawn with `seed`."""
    rng = np.random.default_rng(seed)
    intents = sorted(EXCHANGES)
    rows = []
    for index in range(n_pairs):
        intent = intents[int(rng.integers(len(intents)))]
        customer_templates, agent_templates = EXCHANGES[intent]
        values = {"item": ITEMS[int(rng.integers(len(ITEMS)))], "day": DAYS[int(rng.integers(len(DAYS)))]}
        customer = customer_templates[int(rng.integers(len(customer_templates)))].format(**values)
        agent = agent_templates[int(rng.integers(len(agent_templates)))].format(**values)
        name, gender = NAMES[int(rng.integers(len(NAMES)))]
        dialogue_id = f"t{index:05d}"
        rows.append(
            {
                "pair_id": f"{dialogue_id}:1",
                "dialogue_id": dialogue_id,
                "turn_index": 1,
                "intent": intent,
                "customer_text": customer,
                "context_text": "",
                "input_text": customer,
                "agent_text": agent,
                "customer_name": name,
                "gender": gender,
                "region": REGIONS[int(rng.integers(len(REGIONS)))],
            }
        )
    return pd.DataFrame(rows, columns=list(PAIR_COLUMNS))


def write_tiny_processed(
    directory: str | Path,
    n_pairs: int = 96,
    seed: int = 0,
    max_len: int | None = None,
    vocab_size: int = 200,
    split_fractions: tuple[float, float] = (0.75, 0.125),
) -> Path:
    """Write a processed dataset of `n_pairs` pairs to `directory` and return it.

    `max_len` defaults to the `tiny` preset's. The pairs are split in order
    into train, validation and test by `split_fractions` (train, validation;
    test takes the rest).
    """
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    max_len = max_len or tiny_max_len()
    pairs = make_tiny_pairs(n_pairs, seed)

    texts = list(pairs["input_text"]) + list(pairs["agent_text"])
    tokenizer = TextTokenizer.fit(texts, vocab_size=vocab_size, min_frequency=1)
    tokenizer.save(directory / "tokenizer.json")
    (directory / "text_rules.json").write_text(json.dumps(TextRules().model_dump(mode="json")), encoding="utf-8")

    train_end = int(n_pairs * split_fractions[0])
    validation_end = train_end + int(n_pairs * split_fractions[1])
    bounds = {"train": (0, train_end), "validation": (train_end, validation_end), "test": (validation_end, n_pairs)}
    rows = {}
    for split in SPLITS:
        start, stop = bounds[split]
        frame = pairs.iloc[start:stop].reset_index(drop=True)
        input_ids, _ = tokenizer.encode_batch(list(frame["input_text"]), max_len)
        response_ids, _ = tokenizer.encode_batch(list(frame["agent_text"]), max_len)
        frame.to_parquet(directory / f"{split}.parquet", index=False)
        np.savez(directory / f"{split}.npz", input_ids=input_ids, response_ids=response_ids)
        rows[split] = len(frame)

    manifest = {
        "max_len": max_len,
        "vocab_size": tokenizer.vocab_size,
        "tokenizer_fingerprint": tokenizer.fingerprint,
        "rows": rows,
    }
    (directory / "manifest.json").write_text(json.dumps(manifest, indent=2), encoding="utf-8")
    return directory
