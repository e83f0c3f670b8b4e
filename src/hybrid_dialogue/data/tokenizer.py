"""Subword tokenizer built on Hugging Face `tokenizers` (BPE with a Metaspace pre-tokenizer).

Token ids 0 to 3 are fixed, because the models rely on them: `[PAD]` = 0
(masked in every loss), `[UNK]` = 1, `[BOS]` = 2 (first generator input),
`[EOS]` = 3 (ends a response). The redaction placeholders (`[EMAIL]`,
`[PHONE]`, ...) are added as whole tokens, so they are never split and
decode back to themselves.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable, Sequence
from pathlib import Path

import numpy as np
from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers

PAD, UNK, BOS, EOS = "[PAD]", "[UNK]", "[BOS]", "[EOS]"
SPECIAL_TOKENS = (PAD, UNK, BOS, EOS)
PAD_ID, UNK_ID, BOS_ID, EOS_ID = 0, 1, 2, 3
PLACEHOLDER_TOKENS = ("[EMAIL]", "[PHONE]", "[CARD]", "[ADDRESS]")


class TokenizerError(ValueError):
    """A tokenizer file that is missing, invalid or does not match a model."""


class TextTokenizer:
    """Encodes texts to fixed-length id arrays `[BOS] tokens [EOS] [PAD]...` and back."""

    def __init__(self, tokenizer: Tokenizer) -> None:
        for expected_id, token in enumerate(SPECIAL_TOKENS):
            if tokenizer.token_to_id(token) != expected_id:
                raise TokenizerError(
                    f"tokenizer maps {token} to id {tokenizer.token_to_id(token)}, expected {expected_id}; "
                    "refit it with hybrid-dialogue preprocess"
                )
        self._tokenizer = tokenizer

    @classmethod
    def fit(cls, texts: Iterable[str], vocab_size: int, min_frequency: int = 2) -> TextTokenizer:
        """Train a BPE tokenizer of at most `vocab_size` tokens on `texts`."""
        tokenizer = Tokenizer(models.BPE(unk_token=UNK))
        tokenizer.pre_tokenizer = pre_tokenizers.Metaspace()
        tokenizer.decoder = decoders.Metaspace()
        trainer = trainers.BpeTrainer(
            vocab_size=vocab_size,
            min_frequency=min_frequency,
            special_tokens=list(SPECIAL_TOKENS),
            show_progress=False,
        )
        tokenizer.train_from_iterator(texts, trainer=trainer)
        tokenizer.add_tokens(list(PLACEHOLDER_TOKENS))
        return cls(tokenizer)

    @classmethod
    def load(cls, path: str | Path) -> TextTokenizer:
        """Load a tokenizer saved by `save`."""
        path = Path(path)
        if not path.is_file():
            raise TokenizerError(f"tokenizer file not found: {path}. Run `dvc repro preprocess` first.")
        try:
            return cls(Tokenizer.from_file(str(path)))
        except Exception as error:  # tokenizers raises a bare Exception on invalid JSON
            raise TokenizerError(f"invalid tokenizer file {path}: {error}") from error

    def save(self, path: str | Path) -> None:
        self._tokenizer.save(str(path))

    @property
    def vocab_size(self) -> int:
        return self._tokenizer.get_vocab_size(with_added_tokens=True)

    @property
    def fingerprint(self) -> str:
        """Return a short hash of the vocabulary; a model stores it to detect a swapped tokenizer."""
        vocab = sorted(self._tokenizer.get_vocab(with_added_tokens=True).items())
        return hashlib.sha256(json.dumps(vocab).encode()).hexdigest()[:16]

    def tokenize(self, text: str) -> list[str]:
        """Split one text into token strings, without specials (used by the SHAP masker)."""
        return self._tokenizer.encode(text, add_special_tokens=False).tokens

    def encode_batch(self, texts: Sequence[str], max_len: int) -> tuple[np.ndarray, np.ndarray]:
        """Encode texts to int32 ids of shape (len(texts), max_len).

        Returns the ids and a boolean array that is True where a text was cut
        to fit. A cut text keeps its first `max_len - 2` tokens and still ends
        with `[EOS]`.
        """
        ids = np.full((len(texts), max_len), PAD_ID, dtype=np.int32)
        truncated = np.zeros(len(texts), dtype=bool)
        body_len = max_len - 2
        for row, encoding in enumerate(self._tokenizer.encode_batch(list(texts), add_special_tokens=False)):
            body = encoding.ids
            truncated[row] = len(body) > body_len
            body = body[:body_len]
            ids[row, 0] = BOS_ID
            ids[row, 1 : 1 + len(body)] = body
            ids[row, 1 + len(body)] = EOS_ID
        return ids, truncated

    def decode_batch(self, ids: np.ndarray) -> list[str]:
        """Decode id rows, stopping at the first `[EOS]` and dropping specials."""
        texts = []
        for row in np.asarray(ids):
            tokens = []
            for token_id in row.tolist():
                if token_id == EOS_ID:
                    break
                if token_id not in (PAD_ID, BOS_ID):
                    tokens.append(int(token_id))
            texts.append(self._tokenizer.decode(tokens, skip_special_tokens=False).strip())
        return texts

    def id_to_token(self, token_id: int) -> str | None:
        return self._tokenizer.id_to_token(token_id)
