"""Figures and HTML pages of the SHAP report: bar charts of top tokens, per-example text plots, the index page."""

from __future__ import annotations

import html
import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from hybrid_dialogue.explanation.attribution import Attribution

# Subplots per row in the bar chart, after the overall ranking.
_COLUMNS = 3


@dataclass(frozen=True)
class ExplainedTarget:
    """One explained output (such as the response log-probability) over every example."""

    name: str  # file-name stem: "message" or "response"
    title: str
    unit: str  # unit of the SHAP values
    attributions: list[Attribution]
    importance: dict[str, Any]  # `attribution.token_importance` of the attributions


def bar_chart(target: ExplainedTarget, per_group_top: int) -> Any:
    """Draw the top tokens by total |SHAP| overall and per group (intent); returns a matplotlib Figure."""
    from matplotlib.figure import Figure

    overall = target.importance["overall"]
    groups = sorted(target.importance["by_group"].items())
    panels = [("all intents", overall), *[(group, scores[:per_group_top]) for group, scores in groups]]
    rows = 1 + math.ceil((len(panels) - 1) / _COLUMNS)
    figure = Figure(figsize=(5 * _COLUMNS, 0.3 * len(overall) + 1.5 + 2.2 * (rows - 1)), layout="constrained")
    grid = figure.add_gridspec(rows, _COLUMNS, height_ratios=[max(len(overall), 3) / 4] + [1] * (rows - 1))

    for index, (label, scores) in enumerate(panels):
        axes = figure.add_subplot(grid[0, :]) if index == 0 else figure.add_subplot(grid[1 + (index - 1) // _COLUMNS, (index - 1) % _COLUMNS])
        tokens = [score["token"] for score in scores][::-1]
        values = [score["total_abs_shap"] for score in scores][::-1]
        axes.barh(range(len(tokens)), values, color="#d6336c" if index == 0 else "#4263eb")
        axes.set_yticks(range(len(tokens)), tokens, fontsize="small")
        if not tokens:
            axes.text(0.5, 0.5, "no token seen often enough", ha="center", va="center", transform=axes.transAxes,
                      fontsize="small", color="#666")
            axes.set_xticks([])
        axes.set_title(label, fontsize="medium" if index == 0 else "small")
        axes.tick_params(axis="x", labelsize="x-small")
    figure.suptitle(f"{target.title}: total |SHAP| per token, summed over its occurrences ({target.unit})")
    return figure


def example_page(target: ExplainedTarget, number: int, attribution: Attribution, context: dict[str, str]) -> str:
    """Return a self-contained HTML page with shap's text plot of one example."""
    import shap

    plot = shap.plots.text(attribution.explanation, display=False)
    details = "".join(f"<tr><th>{html.escape(key)}</th><td>{html.escape(value)}</td></tr>" for key, value in context.items())
    return "\n".join([
        "<!DOCTYPE html>", '<html lang="en">', "<head>", '<meta charset="utf-8">',
        f"<title>{html.escape(target.title)}: example {number}</title>", f"<style>{_STYLE}</style>", "</head>", "<body>",
        f'<p><a href="../index.html">SHAP analysis</a> / {html.escape(target.title)} / example {number}</p>',
        f"<h1>{html.escape(target.title)}</h1>",
        "<table>", details,
        f"<tr><th>Output, all tokens masked</th><td>{attribution.base_value:.4f} {html.escape(target.unit)}</td></tr>",
        f"<tr><th>Output, whole text</th><td>{attribution.output_value:.4f} {html.escape(target.unit)}</td></tr>",
        "</table>",
        plot,
        "</body>", "</html>",
    ]) + "\n"


def index_page(targets: Sequence[ExplainedTarget], summary: dict[str, Any], examples: list[dict[str, str]]) -> str:
    """Return the report's index page: settings, bar charts, top-token tables and links to every example.

    Each example has `intent`, `message`, `response` and, per target name,
    the relative path of its page ("" when that target was not explained).
    """
    escape = html.escape
    parts = [
        "<!DOCTYPE html>", '<html lang="en">', "<head>", '<meta charset="utf-8">',
        "<title>SHAP analysis</title>", f"<style>{_STYLE}</style>", "</head>", "<body>",
        "<h1>SHAP analysis</h1>",
        "<table>", *[f"<tr><th>{escape(key)}</th><td>{escape(str(value))}</td></tr>" for key, value in summary.items()],
        "</table>",
    ]
    for target in targets:
        share = target.importance["punctuation_share"]
        share_text = "n/a" if share is None else f"{100 * share:.1f}%"
        parts += [
            f"<h2>{escape(target.title)}</h2>",
            f"<p>SHAP values are in {escape(target.unit)}. Share of |SHAP| on punctuation tokens: {share_text}.</p>",
            f'<img src="{escape(target.name)}_tokens.png" alt="{escape(target.title)}: top tokens">',
            "<table><tr><th>Token</th><th>Total |SHAP|</th><th>Mean |SHAP|</th><th>Occurrences</th></tr>",
            *[f"<tr><td>{escape(score['token'])}</td><td>{score['total_abs_shap']:.4f}</td>"
              f"<td>{score['mean_abs_shap']:.4f}</td><td>{score['count']}</td></tr>"
              for score in target.importance["overall"]],
            "</table>",
        ]
    parts += ["<h2>Examples</h2>", "<table>", "<tr><th>#</th><th>Intent</th><th>Message</th><th>Response</th>"
              + "".join(f"<th>{escape(target.name)}</th>" for target in targets) + "</tr>"]
    for number, example in enumerate(examples):
        links = "".join(
            f'<td><a href="{escape(example[target.name])}">plot</a></td>' if example.get(target.name) else "<td>none</td>"
            for target in targets
        )
        parts.append(f"<tr><td>{number}</td><td>{escape(example['intent'])}</td><td>{escape(example['message'])}</td>"
                     f"<td>{escape(example['response'])}</td>{links}</tr>")
    parts += ["</table>", "</body>", "</html>"]
    return "\n".join(parts) + "\n"


_STYLE = (
    "body{font-family:system-ui,sans-serif;margin:2rem;max-width:80rem;color:#222}"
    "table{border-collapse:collapse;margin:1rem 0}"
    "th,td{border:1px solid #ccc;padding:.3rem .6rem;text-align:left;vertical-align:top}"
    "img{max-width:100%}"
)
