"""The table on stdout, the JSON and the PNG chart in ``benchmarks/results/``."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from ._common import fmt


def _status(record: dict[str, Any]) -> str:
    if record.get("value") is None:
        return f"FAILED: {record.get('miss', '')}"
    if record.get("met") is None:
        return "-"
    if record["met"]:
        return "met"
    return f"MISSED: {record['miss']}"


def _target_text(record: dict[str, Any]) -> str:
    target = record.get("target")
    return "" if not target else target.get("text") or f"{target['op']} {fmt(target['bound'])}"


def _measured(record: dict[str, Any]) -> str:
    value = record.get("value")
    return "-" if value is None else f"{fmt(value)} {record['unit']}"


def _floor(record: dict[str, Any]) -> str:
    floor = record.get("floor")
    return "-" if floor is None else f"{fmt(floor)} {record['unit']}"


def _ratio(record: dict[str, Any]) -> str:
    ratio = record.get("ratio")
    return "-" if ratio is None else f"{ratio:.2f}x"


def table(results: list[dict[str, Any]]) -> str:
    header = ("figure", "target", "measured", "floor", "ratio", "status")
    rows = [
        (r["name"], _target_text(r), _measured(r), _floor(r), _ratio(r), _status(r))
        for r in results
    ]
    widths = [max(len(row[i]) for row in [header, *rows]) for i in range(len(header) - 1)]
    lines = []
    for row in [header, *rows]:
        cells = [cell.ljust(width) for cell, width in zip(row[:-1], widths, strict=True)]
        lines.append("  ".join([*cells, row[-1]]).rstrip())
    lines.insert(1, "-" * min(160, max(len(line) for line in lines)))
    return "\n".join(lines)


def markdown_table(results: list[dict[str, Any]]) -> str:
    lines = [
        "| figure | target | measured | floor | ratio | status |",
        "|---|---|---|---|---|---|",
    ]
    for r in results:
        cells = (r["name"], _target_text(r), _measured(r), _floor(r), _ratio(r), _status(r))
        lines.append("| " + " | ".join(cell.replace("|", "/") for cell in cells) + " |")
    return "\n".join(lines)


def write_json(path: Path, document: dict[str, Any]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(document, indent=2, default=str) + "\n", encoding="utf-8")


def write_chart(path: Path, results: list[dict[str, Any]], title: str) -> bool:
    """Two panels: measured / target (> 1 = missed) and measured / floor (> 1 = slower)."""
    try:
        import matplotlib  # noqa: PLC0415 - optional: the ``bench`` extra

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt  # noqa: PLC0415
    except ImportError:
        print("matplotlib is not installed (pip install -e '.[bench]'): no chart written")
        return False
    rows = [r for r in results if r.get("value") is not None]
    if not rows:
        return False
    names = [r["name"] for r in rows]
    height = max(4.0, 0.32 * len(rows) + 1.5)
    figure, (left, right) = plt.subplots(1, 2, figsize=(15, height), sharey=True)
    positions = list(range(len(rows)))

    fractions, colours = [], []
    for r in rows:
        fraction = r.get("target_fraction")
        fractions.append(fraction if fraction is not None else 0.0)
        colours.append(
            "#bbbbbb" if r.get("met") is None else ("#2e7d32" if r["met"] else "#c62828")
        )
    left.barh(positions, fractions, color=colours)
    left.axvline(1.0, color="black", linewidth=1)
    left.set_xscale("symlog", linthresh=1.0)
    left.set_title("measured / target  (> 1 = target missed; grey: no target)")
    left.set_yticks(positions, names, fontsize=8)
    left.invert_yaxis()
    for y, fraction, r in zip(positions, fractions, rows, strict=True):
        if r.get("target_fraction") is not None:
            left.text(fraction, y, f" {fraction:.2f}", va="center", fontsize=7)

    slowdowns = []
    for r in rows:
        ratio = r.get("ratio")
        if ratio is None or ratio == 0:
            slowdowns.append(0.0)
        else:
            slowdowns.append(ratio if r.get("better") != "higher" else 1 / ratio)
    right.barh(positions, slowdowns, color="#1565c0")
    right.axvline(1.0, color="black", linewidth=1)
    right.set_xscale("symlog", linthresh=1.0)
    right.set_title("measured / floor  (slowdown against bare pykka / bare httpx / raw I/O)")
    for y, slowdown in zip(positions, slowdowns, strict=True):
        if slowdown:
            right.text(slowdown, y, f" {slowdown:.1f}x", va="center", fontsize=7)
    figure.suptitle(title, fontsize=10)
    figure.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    figure.savefig(path, dpi=110)
    plt.close(figure)
    return True
