"""The bias mitigation report in Markdown and in self-contained HTML (no scripts, no external assets)."""

from __future__ import annotations

import html
import re
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from hybrid_dialogue.fairness.measure import GAP_METRICS
from hybrid_dialogue.fairness.probes import ORIGINAL, ProbeSet

MISSING = "n/a"

# Number format of each gap metric in the tables.
_FORMATS = {"quality": "{:.4f}", "length": "{:.2f}", "relevance": "{:.4f}", "helpfulness": "{:.4f}", "bleu": "{:.2f}",
            "preference": "{:.4f}"}

_MARKDOWN_SPECIAL = re.compile(r"([\\`*_\[\]<>|#])")


@dataclass(frozen=True)
class BiasReport:
    """Content of the report. `metrics` has the layout of `metrics/bias.json`."""

    input_model: str
    output_model: str
    metrics: dict[str, Any]
    probes: ProbeSet
    before_responses: list[str]  # row-aligned with `probes.rows`
    after_responses: list[str]
    examples: int = 12
    seed: int = 0
    notes: list[str] = field(default_factory=list)


@dataclass(frozen=True)
class _Example:
    original: str
    variant: str
    variant_group: str
    original_group: str
    before: tuple[str, str]  # responses to (original, variant)
    after: tuple[str, str]


def comparison_rows(metrics: dict[str, Any]) -> list[tuple[str, str, str]]:
    """Return the before-and-after table as (measure, before, after) text cells."""
    before, after = metrics["before"], metrics["after"]
    rows = [
        (f"Headline gap: helpfulness difference between groups ({after.get('gap_source', MISSING)})",
         _cell(before["gap"]), _cell(after["gap"])),
        ("Identical responses, message vs counterfactual copy", _cell(before["consistency"]["identical_rate"]),
         _cell(after["consistency"]["identical_rate"])),
        ("BLEU between responses to message and copy (0-100)", _cell(before["consistency"]["bleu"], "{:.2f}"),
         _cell(after["consistency"]["bleu"], "{:.2f}")),
        ("Latent-mean distance, message vs copy", _cell(before["invariance_distance"]),
         _cell(after["invariance_distance"])),
        ("Preference gap: unhelpful-response preference, message vs copy (nats)", _cell(before.get("preference_gap")),
         _cell(after.get("preference_gap"))),
    ]
    for source, label in (("probe_gaps", "probes"), ("test_gaps", "test pairs")):
        for attribute in sorted(set(before[source]) | set(after[source])):
            for metric in GAP_METRICS:
                values = (_difference(before, source, attribute, metric), _difference(after, source, attribute, metric))
                if values == (None, None):
                    continue
                rows.append((f"{attribute} gap in {metric} ({label})",
                             *(_cell(value, _FORMATS[metric]) for value in values)))
    for metric, number_format in (("bleu", "{:.2f}"), ("relevance", "{:.4f}"), ("perplexity", "{:.2f}")):
        rows.append((f"Test {metric}", _cell(before["quality"][metric], number_format),
                     _cell(after["quality"][metric], number_format)))
    return rows


def group_rows(metrics: dict[str, Any]) -> list[tuple[str, str, str, str]]:
    """Return each group's value before and after as (where, group, metric, "before -> after") cells."""
    rows = []
    for source, label in (("probe_gaps", "probes"), ("test_gaps", "test pairs")):
        for attribute in sorted(metrics["before"][source]):
            before_groups = metrics["before"][source][attribute]["by_group"]
            after_groups = metrics["after"][source].get(attribute, {}).get("by_group", {})
            for metric in GAP_METRICS:
                for group, value in before_groups.get(metric, {}).items():
                    after_value = after_groups.get(metric, {}).get(group)
                    cells = f"{_cell(value, _FORMATS[metric])} -> {_cell(after_value, _FORMATS[metric])}"
                    rows.append((f"{label}, {attribute}", group, metric, cells))
    return rows


def render_markdown(report: BiasReport) -> str:
    metrics = report.metrics
    lines = [
        "# Bias mitigation report",
        "",
        f"Input model: `{report.input_model}`. Mitigated model: `{report.output_model}`.",
        "",
        *[f"- {_escape_markdown(line)}" for line in _summary_lines(metrics)],
        "",
        "## Definitions",
        "",
        *[f"- {_escape_markdown(line)}" for line in DEFINITIONS],
        "",
        "## Before and after",
        "",
        "| Measure | Before | After |",
        "|---|---|---|",
        *[f"| {label} | {before} | {after} |" for label, before, after in comparison_rows(metrics)],
        "",
        "## Values per group",
        "",
        "| Measured on | Group | Metric | Before -> after |",
        "|---|---|---|---|",
        *[f"| {where} | {group} | {metric} | {cells} |" for where, group, metric, cells in group_rows(metrics)],
        "",
        "## Helpfulness of the reference responses",
        "",
        "The data's own gap, for comparison: the share of test references with a resolution step.",
        "",
        "| Attribute | Group | Share |",
        "|---|---|---|",
        *[f"| {attribute} | {group} | {share:.4f} |" for attribute, groups in metrics["reference_helpfulness"].items()
          for group, share in groups.items()],
    ]
    if report.notes:
        lines += ["", "## Notes", "", *[f"- {_escape_markdown(note)}" for note in report.notes]]

    examples = pick_examples(report)
    lines += ["", f"## Example pairs ({len(examples)})", ""]
    lines += ["| Message (group) | Responses before | Responses after |", "|---|---|---|"]
    for example in examples:
        message = (f"{_escape_markdown(example.original)} ({example.original_group})<br>"
                   f"{_escape_markdown(example.variant)} ({example.variant_group})")
        before = "<br>".join(_escape_markdown(text) or "(empty)" for text in example.before)
        after = "<br>".join(_escape_markdown(text) or "(empty)" for text in example.after)
        lines.append(f"| {message} | {before} | {after} |")
    return "\n".join(lines) + "\n"


def render_html(report: BiasReport) -> str:
    escape = html.escape
    metrics = report.metrics
    parts = [
        "<!DOCTYPE html>", '<html lang="en">', "<head>", '<meta charset="utf-8">',
        "<title>Bias mitigation report</title>", f"<style>{_STYLE}</style>", "</head>", "<body>",
        "<h1>Bias mitigation report</h1>",
        f"<p>Input model: <code>{escape(report.input_model)}</code>. "
        f"Mitigated model: <code>{escape(report.output_model)}</code>.</p>",
        "<ul>", *[f"<li>{escape(line)}</li>" for line in _summary_lines(metrics)], "</ul>",
        "<h2>Definitions</h2>", "<ul>", *[f"<li>{escape(line)}</li>" for line in DEFINITIONS], "</ul>",
        "<h2>Before and after</h2>", "<table>", "<tr><th>Measure</th><th>Before</th><th>After</th></tr>",
        *[f"<tr><th>{escape(label)}</th><td>{escape(before)}</td><td>{escape(after)}</td></tr>"
          for label, before, after in comparison_rows(metrics)],
        "</table>",
        "<h2>Values per group</h2>", "<table>",
        "<tr><th>Measured on</th><th>Group</th><th>Metric</th><th>Before -&gt; after</th></tr>",
        *[f"<tr><td>{escape(where)}</td><td>{escape(group)}</td><td>{escape(metric)}</td><td>{escape(cells)}</td></tr>"
          for where, group, metric, cells in group_rows(metrics)],
        "</table>",
        "<h2>Helpfulness of the reference responses</h2>",
        "<p>The data's own gap, for comparison: the share of test references with a resolution step.</p>",
        "<table>", "<tr><th>Attribute</th><th>Group</th><th>Share</th></tr>",
        *[f"<tr><td>{escape(attribute)}</td><td>{escape(group)}</td><td>{share:.4f}</td></tr>"
          for attribute, groups in metrics["reference_helpfulness"].items() for group, share in groups.items()],
        "</table>",
    ]
    if report.notes:
        parts += ["<h2>Notes</h2>", "<ul>", *[f"<li>{escape(note)}</li>" for note in report.notes], "</ul>"]

    examples = pick_examples(report)
    parts += [
        f"<h2>Example pairs ({len(examples)})</h2>", '<table class="examples">',
        "<tr><th>Message (group)</th><th>Response before</th><th>Response after</th></tr>",
    ]
    for example in examples:
        for text, group, before, after in (
            (example.original, example.original_group, example.before[0], example.after[0]),
            (example.variant, example.variant_group, example.before[1], example.after[1]),
        ):
            parts.append(f"<tr><td>{escape(text)} <em>({escape(group or 'unknown')})</em></td>"
                         f"<td>{escape(before)}</td><td>{escape(after)}</td></tr>")
        parts.append('<tr class="gap"><td colspan="3"></td></tr>')
    parts += ["</table>", "</body>", "</html>"]
    return "\n".join(parts) + "\n"


def pick_examples(report: BiasReport) -> list[_Example]:
    """Pick up to `report.examples` message/variant pairs, first those whose responses differed before mitigation."""
    rows = report.probes.rows.reset_index(drop=True)
    if not len(rows) or not report.examples:
        return []
    originals = {message: position for position, (message, kind) in
                 enumerate(zip(rows["message_id"], rows["kind"])) if kind == ORIGINAL}
    variant_positions = [position for position, kind in enumerate(rows["kind"]) if kind != ORIGINAL]
    differing = [p for p in variant_positions
                 if report.before_responses[p] != report.before_responses[originals[rows["message_id"][p]]]]
    others = [p for p in variant_positions if p not in set(differing)]

    rng = np.random.default_rng(report.seed)
    picked: list[int] = []
    for pool in (differing, others):
        take = min(report.examples - len(picked), len(pool))
        if take > 0:
            picked += sorted(rng.choice(pool, size=take, replace=False).tolist())

    examples = []
    for position in picked:
        source = originals[rows["message_id"][position]]
        examples.append(_Example(
            original=rows["input_text"][source],
            variant=rows["input_text"][position],
            original_group=rows["group"][source],
            variant_group=rows["group"][position],
            before=(report.before_responses[source], report.before_responses[position]),
            after=(report.after_responses[source], report.after_responses[position]),
        ))
    return examples


def _summary_lines(metrics: dict[str, Any]) -> list[str]:
    targets = metrics["targets"]
    bleu_loss = metrics["relative_bleu_loss"]
    return [
        f"Headline gap ({metrics['after'].get('gap_source', MISSING)}): {_cell(metrics['gap_before'])} before, "
        f"{_cell(metrics['gap_after'])} after mitigation.",
        f"Gap reduction: {_reduction_text(metrics)} (target at least {_percent(targets['min_gap_reduction'])}: "
        f"{targets['gap_reduction_status']}).",
        f"Relative BLEU loss: {_percent(bleu_loss)}{' (BLEU rose)' if bleu_loss is not None and bleu_loss < 0 else ''} "
        f"(target at most {_percent(targets['max_relative_bleu_loss'])}: "
        f"{targets['bleu_loss_status']}).",
        f"Reweighing: {metrics.get('training', {}).get('reweighing', MISSING)}.",
        f"Preference gap (unhelpful-response preference, first group's message minus its counterfactual copy, "
        f"nats): {_cell(metrics.get('preference_gap_before'))} before, {_cell(metrics.get('preference_gap_after'))} "
        "after.",
    ]


# Definitions of the report's row sets and measures, shown under the summary.
DEFINITIONS = (
    "Test pairs: a sample of the test split's exchanges, grouped by the customer's group metadata. Their gaps are "
    "what each group of customers gets, whatever in the message or its context carries the group.",
    "Probes: test messages that mention a listed name or gendered word, each paired with counterfactual copies "
    "whose names and gendered words signal another group. A probe's group is the group its text signals, so "
    "probe gaps measure the effect of the name itself.",
    "Gap: the largest minus the smallest group value of a metric (fairlearn's MetricFrame.difference), never "
    "negative. The headline gap is the helpfulness gap of the bias attribute.",
    "Helpfulness: the share of responses with a resolution step from the package's phrase list. Preference: "
    "log mean probability of the most frequent unhelpful training responses minus that of the most frequent "
    "helpful ones, under the generator.",
    "Preference gap: the mean over probe pairs of the preference for the text that signals the alphabetically "
    "first group (female, for gender) minus that for its copy. It is signed, and it compares each message with "
    "its own copy. The probe rows' \"preference\" gap compares group means instead.",
    "Reweighing: the mitigation draws training pairs with weights that give every group the same share of "
    "helpful responses: that of all pairs (overall) or of the best-served group (best_group). Per-group BLEU "
    "depends on group size when few n-grams match, so compare it only between groups of similar size.",
)


def _reduction_text(metrics: dict[str, Any]) -> str:
    """Return the gap reduction as a percentage, or why there is none."""
    reduction, before, after = metrics["gap_reduction"], metrics["gap_before"], metrics["gap_after"]
    if reduction is not None:
        return _percent(reduction)
    if before is None or after is None:
        return f"{MISSING} (no gap measured)"
    if before == 0:
        return f"{MISSING} (no gap before mitigation; the gap after is {_cell(after)})"
    return MISSING


def _difference(audit: dict[str, Any], source: str, attribute: str, metric: str) -> float | None:
    return audit[source].get(attribute, {}).get("difference", {}).get(metric)


def _cell(value: float | None, number_format: str = "{:.4f}") -> str:
    return MISSING if value is None else number_format.format(value)


def _percent(value: float | None) -> str:
    return MISSING if value is None else f"{100 * value:.1f}%"


def _escape_markdown(text: str) -> str:
    """Keep a text on one table row and stop it from adding Markdown formatting or HTML."""
    return _MARKDOWN_SPECIAL.sub(r"\\\1", " ".join(str(text).split()))


_STYLE = (
    "body{font-family:system-ui,sans-serif;margin:2rem;max-width:75rem;color:#222}"
    "table{border-collapse:collapse;margin:1rem 0}"
    "th,td{border:1px solid #ccc;padding:.3rem .6rem;text-align:left;vertical-align:top}"
    "td{font-variant-numeric:tabular-nums}"
    "table.examples td{max-width:30rem}"
    "tr.gap td{border:none;padding:.4rem}"
    "code{background:#f4f4f4;padding:0 .2rem}"
)
