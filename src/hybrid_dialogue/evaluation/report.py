"""The evaluation report in Markdown and in self-contained HTML (no scripts, no external assets)."""

from __future__ import annotations

import html
import re
from collections.abc import Mapping
from dataclasses import dataclass, field

# Rows of the metric table: (key in each system's metrics, label, number format).
METRIC_ROWS = (
    ("bleu", "BLEU (0-100)", "{:.2f}"),
    ("rouge1", "ROUGE-1 F1", "{:.4f}"),
    ("rouge2", "ROUGE-2 F1", "{:.4f}"),
    ("rougeL", "ROUGE-L F1", "{:.4f}"),
    ("distinct_1", "Distinct-1", "{:.4f}"),
    ("distinct_2", "Distinct-2", "{:.4f}"),
    ("mean_length", "Mean length (BLEU 13a tokens)", "{:.2f}"),
    ("length_ratio", "Length ratio to references", "{:.3f}"),
    ("relevance", "Relevance (intent match)", "{:.4f}"),
    ("perplexity", "Perplexity of references", "{:.2f}"),
)

DISCRIMINATOR_ROWS = (
    ("discriminator_accuracy", "Accuracy, real vs generated (threshold 0.5)", "{:.4f}"),
    ("discriminator_roc_auc", "ROC AUC, real vs generated", "{:.4f}"),
    ("quality_real", "Mean quality score of reference responses", "{:.4f}"),
    ("quality_generated", "Mean quality score of generated responses", "{:.4f}"),
)

# Columns of the discriminator table: which responses count as "generated".
DISCRIMINATOR_COLUMNS = (("model", "Model responses"), ("generator", "Generator, free decoding"))

# Table columns: (key in the metrics file, heading).
SYSTEM_COLUMNS = (
    ("model", "Model"),
    ("generator", "Generator, free decoding"),
    ("retrieval", "Retrieval baseline"),
    ("constant", "Constant baseline"),
    ("reference", "References"),
)

MISSING = "n/a"

_MARKDOWN_SPECIAL = re.compile(r"([\\`*_\[\]<>|#])")


@dataclass(frozen=True)
class SampleExchange:
    customer_text: str
    reference: str
    generated: str
    quality: float  # discriminator score of the generated response, 0 to 1
    free_generated: str = ""  # the generator's free decoding of the same message


@dataclass(frozen=True)
class ReportContent:
    """Everything the report shows. `metrics` has the layout of `metrics/evaluate.json`."""

    model_path: str
    metrics: Mapping[str, Mapping[str, float]]
    pairs_scored: int
    pairs_total: int
    samples: list[SampleExchange]
    notes: list[str] = field(default_factory=list)


def render_markdown(content: ReportContent) -> str:
    lines = [
        "# Evaluation report",
        "",
        f"Model: `{content.model_path}`. Test pairs scored: {content.pairs_scored} of {content.pairs_total}.",
        "",
        "## Metrics",
        "",
        "| Metric | " + " | ".join(heading for _, heading in SYSTEM_COLUMNS) + " |",
        "|---" * (len(SYSTEM_COLUMNS) + 1) + "|",
    ]
    for label, cells in _metric_table(content.metrics):
        lines.append(f"| {label} | " + " | ".join(cells) + " |")

    headings = " | ".join(heading for _, heading in DISCRIMINATOR_COLUMNS)
    lines += ["", "## Discriminator", "", f"| Measure | {headings} |", "|---" * (len(DISCRIMINATOR_COLUMNS) + 1) + "|"]
    for label, cells in _discriminator_table(content.metrics):
        lines.append(f"| {label} | " + " | ".join(cells) + " |")

    if content.notes:
        lines += ["", "## Notes", ""]
        lines += [f"- {_escape_markdown(note)}" for note in content.notes]

    lines += ["", f"## Sample exchanges ({len(content.samples)})", ""]
    lines += [
        "| # | Customer message | Reference | Generated | Quality | Generator, free decoding |",
        "|---|---|---|---|---|---|",
    ]
    for number, sample in enumerate(content.samples, start=1):
        cells = [_escape_markdown(text) for text in (sample.customer_text, sample.reference, sample.generated)]
        lines.append(f"| {number} | " + " | ".join(cells) + f" | {sample.quality:.3f} | {_escape_markdown(sample.free_generated)} |")
    return "\n".join(lines) + "\n"


def render_html(content: ReportContent) -> str:
    escape = html.escape
    parts = [
        "<!DOCTYPE html>",
        '<html lang="en">',
        "<head>",
        '<meta charset="utf-8">',
        "<title>Evaluation report</title>",
        f"<style>{_STYLE}</style>",
        "</head>",
        "<body>",
        "<h1>Evaluation report</h1>",
        f"<p>Model: <code>{escape(content.model_path)}</code>. "
        f"Test pairs scored: {content.pairs_scored} of {content.pairs_total}.</p>",
        "<h2>Metrics</h2>",
        "<table>",
        "<tr><th>Metric</th>" + "".join(f"<th>{escape(heading)}</th>" for _, heading in SYSTEM_COLUMNS) + "</tr>",
    ]
    for label, cells in _metric_table(content.metrics):
        parts.append(f"<tr><th>{escape(label)}</th>" + "".join(f"<td>{escape(cell)}</td>" for cell in cells) + "</tr>")
    parts += ["</table>", "<h2>Discriminator</h2>", "<table>"]
    parts.append("<tr><th>Measure</th>" + "".join(f"<th>{escape(heading)}</th>" for _, heading in DISCRIMINATOR_COLUMNS) + "</tr>")
    for label, cells in _discriminator_table(content.metrics):
        parts.append(f"<tr><th>{escape(label)}</th>" + "".join(f"<td>{escape(cell)}</td>" for cell in cells) + "</tr>")
    parts.append("</table>")

    if content.notes:
        parts += ["<h2>Notes</h2>", "<ul>"]
        parts += [f"<li>{escape(note)}</li>" for note in content.notes]
        parts.append("</ul>")

    parts += [
        f"<h2>Sample exchanges ({len(content.samples)})</h2>",
        '<table class="samples">',
        "<tr><th>#</th><th>Customer message</th><th>Reference</th><th>Generated</th><th>Quality</th>"
        "<th>Generator, free decoding</th></tr>",
    ]
    for number, sample in enumerate(content.samples, start=1):
        cells = "".join(f"<td>{escape(text)}</td>" for text in (sample.customer_text, sample.reference, sample.generated))
        parts.append(
            f"<tr><td>{number}</td>{cells}<td>{sample.quality:.3f}</td><td>{escape(sample.free_generated)}</td></tr>"
        )
    parts += ["</table>", "</body>", "</html>"]
    return "\n".join(parts) + "\n"


def _metric_table(metrics: Mapping[str, Mapping[str, float]]) -> list[tuple[str, list[str]]]:
    """Return one (label, cells) row per metric that at least one column has."""
    rows = []
    for key, label, number_format in METRIC_ROWS:
        cells = [_format(metrics.get(system, {}).get(key), number_format) for system, _ in SYSTEM_COLUMNS]
        if any(cell != MISSING for cell in cells):
            rows.append((label, cells))
    return rows


def _discriminator_table(metrics: Mapping[str, Mapping[str, float]]) -> list[tuple[str, list[str]]]:
    """Return one (label, cells) row per discriminator measure, a cell per DISCRIMINATOR_COLUMNS entry."""
    return [
        (label, [_format(metrics.get(system, {}).get(key), number_format) for system, _ in DISCRIMINATOR_COLUMNS])
        for key, label, number_format in DISCRIMINATOR_ROWS
    ]


def _format(value: float | None, number_format: str) -> str:
    return MISSING if value is None else number_format.format(value)


def _escape_markdown(text: str) -> str:
    """Keep a text on one table row and stop it from adding Markdown formatting or HTML."""
    return _MARKDOWN_SPECIAL.sub(r"\\\1", " ".join(text.split()))


_STYLE = (
    "body{font-family:system-ui,sans-serif;margin:2rem;max-width:75rem;color:#222}"
    "table{border-collapse:collapse;margin:1rem 0}"
    "th,td{border:1px solid #ccc;padding:.3rem .6rem;text-align:left;vertical-align:top}"
    "td{font-variant-numeric:tabular-nums}"
    "table.samples td{max-width:24rem}"
    "code{background:#f4f4f4;padding:0 .2rem}"
)
