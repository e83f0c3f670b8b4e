"""Turn per-step token distributions of the non-autoregressive decoder and generator into token ids.

The decoder and generator emit all steps at once. Their loss ignores the
steps after [EOS]. So the [EOS] probability at step t is the chance that the
text ends at t given that it is still running there (a hazard). The other
probabilities are the chance of each token given that the text goes on.

Taking the argmax of every step independently ends most texts after two or
three words: the [EOS] probability is spread over the many lengths of the
training texts, but at some early step it still beats every single word.
`decode_ids` first picks a length from the hazards, then the most likely
word at each step before it.
"""

from __future__ import annotations

import math
from typing import Any

from keras import ops

from hybrid_dialogue.data.tokenizer import EOS_ID, PAD_ID

# Keeps log(1 - hazard) finite where the [EOS] probability rounds to 1.
_EPSILON = 1e-7
# The text ends at the first step by which it has ended with at least this
# probability. It was chosen on 2,000 messages of the default corpus's
# validation split with a trained `cpu`-preset model. The median (0.5) gave
# responses of 9.9 words against 13.0 in the references, and BLEU 3.7. 0.7
# gave 14.4 words and BLEU 5.9, and 0.85 gave 17.4 words and BLEU 5.2.
END_PROBABILITY = 0.7
_LOG_SURVIVAL_AT_END = math.log(1.0 - END_PROBABILITY)


def decode_ids(probabilities: Any) -> Any:
    """Return int32 ids (batch, L) for `probabilities` (batch, L, vocab): [BOS] words... [EOS] [PAD]...

    The text ends at the first step t where P(ended by t) = 1 - prod_{s<=t} (1 - h_s)
    reaches `END_PROBABILITY`, with h the [EOS] probabilities. When it never
    does, the text fills all L steps with no [EOS]. Before the end, each step
    takes its most likely token other than [EOS] and [PAD].
    """
    probabilities = ops.cast(probabilities, "float32")
    steps = ops.shape(probabilities)[1]

    # 1. The length: the first step by which the text has ended with
    #    probability END_PROBABILITY (L when it runs on past the last step).
    hazard = probabilities[:, :, EOS_ID]  # (batch, L)
    log_survival = ops.cumsum(ops.log(ops.maximum(1.0 - hazard, _EPSILON)), axis=1)  # log prod_{s<=t} (1 - h_s)
    ended = ops.cast(log_survival <= _LOG_SURVIVAL_AT_END, "int32")  # (batch, L), 0 then 1
    end = steps - ops.sum(ended, axis=1)  # (batch,), in [0, L]

    # 2. The most likely word of each step, [EOS] and [PAD] excluded.
    vocab_size = ops.shape(probabilities)[2]
    special = ops.one_hot(ops.convert_to_tensor([EOS_ID, PAD_ID]), vocab_size, dtype="float32")  # (2, vocab)
    allowed = 1.0 - ops.sum(special, axis=0)  # (vocab,)
    words = ops.cast(ops.argmax(probabilities * allowed, axis=-1), "int32")  # (batch, L)

    # 3. Words before the end, [EOS] at it, [PAD] after it.
    position = ops.expand_dims(ops.arange(steps, dtype="int32"), 0)  # (1, L)
    end = ops.expand_dims(ops.cast(end, "int32"), 1)  # (batch, 1)
    eos = ops.full_like(words, EOS_ID)
    pad = ops.full_like(words, PAD_ID)
    return ops.where(position < end, words, ops.where(position == end, eos, pad))


def pick_from_inventory(probabilities: Any, inventory_ids: Any) -> Any:
    """Return int32 indices (batch,) of the inventory response each row's distributions favour most.

    `probabilities` is (batch, L, vocab); `inventory_ids` is (C, L) int32 token
    ids of C candidate responses ([BOS] ... [EOS], then [PAD]). Each candidate
    y gets its expected positional overlap with the generator's text Y, an
    expected Dice coefficient:

        2 * sum_t P(Y_t = y_t) / (len(y) + E[len(Y)])

    where the sum and len(y) cover y's tokens up to its [EOS], and E[len(Y)]
    is the expected length under the [EOS] hazards (see `decode_ids`), [BOS]
    and [EOS] included. The numerator rewards the words the generator expects
    at each position, and the denominator stops long candidates from
    collecting small probabilities everywhere. The likelihood (the sum of log
    probabilities) is not used because every extra token lowers it: on the
    default corpus it picked replies of 3.4 words on average against 15.5
    in the references (benchmarks/BENCHMARKS.md).
    """
    probabilities = ops.cast(probabilities, "float32")
    inventory_ids = ops.cast(inventory_ids, "int32")

    # Expected length: 1 ([BOS]) plus, for each later step, the chance that
    # the text has not ended before it.
    hazard = probabilities[:, :, EOS_ID]  # (batch, L)
    survival = ops.cumprod(1.0 - hazard, axis=1)  # P(still running after step t)
    expected_length = 1.0 + ops.sum(survival[:, :-1], axis=1)  # (batch,)

    # P(Y_t = y_t) for every candidate and step, gathered per step: (L, C, batch).
    by_step = ops.transpose(probabilities, (1, 2, 0))  # (L, vocab, batch)
    gathered = ops.take_along_axis(by_step, ops.expand_dims(ops.transpose(inventory_ids), -1), axis=1)
    in_text = ops.cast(ops.not_equal(ops.transpose(inventory_ids), PAD_ID), "float32")  # (L, C)
    matches = ops.sum(gathered * ops.expand_dims(in_text, -1), axis=0)  # (C, batch)

    lengths = ops.sum(in_text, axis=0)  # (C,)
    overlap = 2.0 * matches / (ops.expand_dims(lengths, 1) + ops.expand_dims(expected_length, 0))
    return ops.cast(ops.argmax(overlap, axis=0), "int32")  # (batch,)
