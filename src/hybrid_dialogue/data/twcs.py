"""Rebuild Customer Support on Twitter (twcs) threads into dialogues.

The twcs CSV has one tweet per row: `tweet_id, author_id, inbound, created_at,
text, response_tweet_id, in_response_to_tweet_id`. `inbound` is True for a
customer's tweet and False for a company's. Threads are rebuilt from
`in_response_to_tweet_id`. `response_tweet_id` contains the same links in
the other direction and is not needed.

Each thread that starts with a customer tweet becomes one dialogue, in reply
order. Where a tweet has several replies, the dialogue follows the earliest
(by `created_at`, then tweet id), and the tweets of the other branches are
counted as skipped. A reply whose parent is not in the file starts a thread of
its own, because samples of twcs often lack the parent. Consecutive tweets of
one side are merged into one turn, since people often split a message over
several tweets.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

from hybrid_dialogue.data.importers import ImportOptions, ReadCounts, ReadItem, Rejection, record_excerpt, csv_rows

TWCS_REQUIRED_COLUMNS = ("tweet_id", "author_id", "inbound", "created_at", "text", "in_response_to_tweet_id")
CREATED_AT_FORMAT = "%a %b %d %H:%M:%S %z %Y"  # e.g. "Tue Oct 31 22:10:47 +0000 2017"
_TRUE = {"true", "1"}
_FALSE = {"false", "0"}


@dataclass(frozen=True)
class Tweet:
    tweet_id: str
    author_id: str
    inbound: bool
    created_at: str
    text: str
    parent_id: str | None
    line: int


def read_twcs(src: Path, options: ImportOptions, counts: ReadCounts) -> Iterator[ReadItem]:
    """Yield one record per customer-started thread, and `Rejection`s for malformed tweets."""
    # NOTE: every tweet stays in memory until the threads are built. Memory use
    # on the full twcs release (about 2.8 million tweets) has not been measured.
    tweets: dict[str, Tweet] = {}
    rows = csv_rows(src, required=TWCS_REQUIRED_COLUMNS, fmt="twcs", counts=counts)
    next(rows)  # the header, already checked
    for item in rows:
        if isinstance(item, Rejection):
            yield item
            continue
        line, row = item
        parsed = _parse_tweet(line, row, tweets)
        if isinstance(parsed, Rejection):
            yield parsed
        else:
            tweets[parsed.tweet_id] = parsed

    children: dict[str, list[str]] = {}
    roots: list[str] = []
    for tweet in tweets.values():  # file order: dicts keep insertion order
        if tweet.parent_id is not None and tweet.parent_id in tweets:
            children.setdefault(tweet.parent_id, []).append(tweet.tweet_id)
        else:
            roots.append(tweet.tweet_id)

    used: set[str] = set()
    for root_id in roots:
        root = tweets[root_id]
        if not root.inbound:
            counts.skipped["thread_starts_with_company"] += _subtree_size(root_id, children, used)
            continue
        path = _main_path(root_id, tweets, children, counts, used)
        record = _thread_record(path)
        if record is None:
            counts.skipped["no_company_reply"] += len(path)
            continue
        yield root.line, record

    # Tweets in reply cycles are reachable from no root.
    unreached = len(tweets) - len(used)
    if unreached:
        counts.skipped["reply_cycle"] += unreached


def _parse_tweet(line: int, row: dict[str, str], tweets: dict[str, Tweet]) -> Tweet | Rejection:
    tweet_id = _normalise_id(row["tweet_id"])
    if tweet_id is None:
        return Rejection(line, "missing_tweet_id", "tweet_id is empty", record_excerpt(row))
    if tweet_id in tweets:
        return Rejection(line, "duplicate_tweet_id", f"tweet_id {tweet_id} appeared earlier", record_excerpt(row))

    inbound = row["inbound"].strip().lower()
    if inbound not in _TRUE | _FALSE:
        detail = f"inbound must be True or False, got {row['inbound']!r}"
        return Rejection(line, "invalid_inbound", detail, record_excerpt(row))
    if not row["text"].strip():
        return Rejection(line, "empty_text", f"tweet {tweet_id} has no text", record_excerpt(row))

    return Tweet(
        tweet_id=tweet_id,
        author_id=row["author_id"].strip(),
        inbound=inbound in _TRUE,
        created_at=row["created_at"],
        text=row["text"],
        parent_id=_normalise_id(row["in_response_to_tweet_id"]),
        line=line,
    )


def _normalise_id(value: str) -> str | None:
    """Return a tweet id as digits, because the published twcs file writes parent ids as floats ("3.0")."""
    value = value.strip()
    if value.endswith(".0") and value[:-2].isdigit():
        value = value[:-2]
    return value or None


def _main_path(
    root_id: str, tweets: dict[str, Tweet], children: dict[str, list[str]], counts: ReadCounts, used: set[str]
) -> list[Tweet]:
    """Follow the earliest reply from `root_id` down, and count the other branches as skipped."""
    path = []
    current: str | None = root_id
    while current is not None and current not in used:
        used.add(current)
        path.append(tweets[current])
        replies = children.get(current, [])
        if len(replies) > 1:  # parsing created_at is slow, so only where there is a choice
            replies = sorted(replies, key=lambda tweet_id: _reply_order(tweets[tweet_id]))
        current = replies[0] if replies else None
        for other in replies[1:]:
            counts.skipped["branch"] += _subtree_size(other, children, used)
    return path


def _reply_order(tweet: Tweet) -> tuple[Any, ...]:
    """Sort key: creation time (unparseable times last), then tweet id in numeric order."""
    try:
        created = datetime.strptime(tweet.created_at.strip(), CREATED_AT_FORMAT).timestamp()
    except ValueError:
        created = float("inf")
    return (created, len(tweet.tweet_id), tweet.tweet_id)


def _subtree_size(root_id: str, children: dict[str, list[str]], used: set[str]) -> int:
    """Mark the tweets under `root_id` (inclusive) as used and return how many there were."""
    size = 0
    stack = [root_id]
    while stack:
        tweet_id = stack.pop()
        if tweet_id in used:
            continue
        used.add(tweet_id)
        size += 1
        stack.extend(children.get(tweet_id, ()))
    return size


def _thread_record(path: list[Tweet]) -> dict[str, Any] | None:
    """Return the dialogue record of a thread, or None when no company tweet replies to the customer."""
    turns: list[dict[str, str]] = []
    for tweet in path:
        role = "customer" if tweet.inbound else "agent"
        if turns and turns[-1]["role"] == role:
            turns[-1]["text"] += " " + tweet.text
        else:
            turns.append({"role": role, "text": tweet.text})
    if len(turns) < 2:
        return None

    company = next(tweet.author_id for tweet in path if not tweet.inbound)
    return {
        "id": f"twcs-{path[0].tweet_id}",
        "turns": turns,
        "intent": None,
        "metadata": {"customer_id": path[0].author_id, "company": company},
    }
