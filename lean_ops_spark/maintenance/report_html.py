"""A self-contained HTML health report: one file, inline CSS and SVG, no script, no CDN.

Per table: headline figures coloured against the policy thresholds, a file-size
distribution, small files per partition, and a snapshot timeline; with a maintenance
report, what ran, why, and health before/after. Pure: builds a string.
"""

from __future__ import annotations

import html
from collections.abc import Mapping, Sequence
from datetime import datetime, timezone

from lean_ops_spark.config.models import HealthThresholds
from lean_ops_spark.maintenance.health import TableHealth
from lean_ops_spark.maintenance.runner import MaintenanceReport, TableReport

__all__ = ["render_health_html"]

_OPERATION_COLOURS = {
    "append": "#2b8a3e",
    "overwrite": "#e8590c",
    "delete": "#c92a2a",
    "replace": "#1971c2",
}
_OTHER_COLOUR = "#868e96"
_CSS = """
body{font-family:-apple-system,Segoe UI,Helvetica,Arial,sans-serif;margin:24px;color:#212529;background:#f8f9fa}
h1{font-size:22px;margin:0 0 4px} h2{font-size:18px;margin:0 0 12px} h3{font-size:14px;margin:8px 0}
.muted{color:#868e96;font-size:12px}
section{background:#fff;border:1px solid #dee2e6;border-radius:8px;padding:16px;margin:16px 0}
table{border-collapse:collapse;font-size:13px} th,td{padding:4px 8px;border-bottom:1px solid #eee;text-align:left}
td.num,th.num{text-align:right}
.cards{display:flex;flex-wrap:wrap;gap:8px;margin-bottom:12px}
.card{border:1px solid #dee2e6;border-radius:6px;padding:8px 12px;min-width:120px}
.card .v{font-size:18px;font-weight:600} .card .k{font-size:11px;color:#868e96;text-transform:uppercase}
.ok{border-left:4px solid #2b8a3e} .warn{border-left:4px solid #e8590c}
.badge{display:inline-block;padding:1px 6px;border-radius:4px;font-size:11px;color:#fff}
.b-ok{background:#2b8a3e} .b-warn{background:#e8590c} .b-bad{background:#c92a2a} .b-skip{background:#adb5bd}
.charts{display:flex;flex-wrap:wrap;gap:16px} .chart{flex:1 1 320px}
svg text{font-size:10px;fill:#495057}
"""


def _e(value: object) -> str:
    return html.escape(str(value), quote=True)


def _size(n: float) -> str:
    for unit, factor in (("GiB", 1 << 30), ("MiB", 1 << 20), ("KiB", 1 << 10)):
        if n >= factor:
            return f"{n / factor:.1f} {unit}"
    return f"{n:.0f} B"


def _ts(ms: int | None) -> str:
    if ms is None:
        return "-"
    return datetime.fromtimestamp(ms / 1000, tz=timezone.utc).strftime("%Y-%m-%d %H:%M")


def _card(label: str, value: str, warn: bool | None = None) -> str:
    css = "" if warn is None else (" warn" if warn else " ok")
    return f'<div class="card{css}"><div class="v">{_e(value)}</div><div class="k">{_e(label)}</div></div>'


def _histogram_svg(health: TableHealth) -> str:
    bars = list(health.file_size_histogram)
    if not bars:
        return '<p class="muted">no data files</p>'
    width, height, left, bottom = 360, 180, 30, 34
    top = max(n for _, n in bars)
    step = (width - left - 10) / len(bars)
    parts = [
        f'<svg viewBox="0 0 {width} {height}" width="100%" role="img" aria-label="file-size distribution">'
    ]
    for i, (lower, count) in enumerate(bars):
        bar_h = (height - bottom - 14) * count / top
        x = left + i * step
        y = height - bottom - bar_h
        small = lower < health.small_file_threshold_bytes
        colour = "#e8590c" if small else "#2b8a3e"
        parts.append(
            f'<rect x="{x + 1:.1f}" y="{y:.1f}" width="{max(step - 2, 1):.1f}" height="{bar_h:.1f}" '
            f'fill="{colour}"><title>{_e(_size(lower))}-{_e(_size(lower * 2))}: {count} files</title></rect>'
        )
        parts.append(f'<text x="{x + step / 2:.1f}" y="{y - 2:.1f}" text-anchor="middle">{count}</text>')
        parts.append(
            f'<text x="{x + step / 2:.1f}" y="{height - bottom + 12}" text-anchor="middle">{_e(_size(lower))}</text>'
        )
    parts.append(
        f'<line x1="{left}" y1="{height - bottom}" x2="{width - 10}" y2="{height - bottom}" stroke="#adb5bd"/>'
    )
    parts.append(
        f'<text x="{left}" y="{height - 6}">orange: below the small-file threshold '
        f"({_e(_size(health.small_file_threshold_bytes))})</text>"
    )
    parts.append("</svg>")
    return "".join(parts)


def _partitions_svg(health: TableHealth, limit: int = 12) -> str:
    worst = health.top_small_file_partitions(limit)
    if not worst:
        return '<p class="muted">no partition holds small files</p>'
    row_h, label_w, width = 18, 150, 360
    height = row_h * len(worst) + 24
    top = max(p.data_file_count for p in worst)
    scale = (width - label_w - 40) / top
    parts = [
        f'<svg viewBox="0 0 {width} {height}" width="100%" role="img" aria-label="small files per partition">'
    ]
    for i, p in enumerate(worst):
        y = 4 + i * row_h
        label = p.label if len(p.label) <= 26 else p.label[:25] + "..."
        parts.append(f'<text x="{label_w - 4}" y="{y + 12}" text-anchor="end">{_e(label)}</text>')
        parts.append(
            f'<rect x="{label_w}" y="{y + 2}" width="{p.data_file_count * scale:.1f}" height="{row_h - 5}" '
            f'fill="#dee2e6"><title>{_e(p.label)}: {p.data_file_count} data files</title></rect>'
        )
        parts.append(
            f'<rect class="small-bar" x="{label_w}" y="{y + 2}" width="{p.small_file_count * scale:.1f}" '
            f'height="{row_h - 5}" fill="#e8590c"><title>{_e(p.label)}: {p.small_file_count} small files'
            "</title></rect>"
        )
        parts.append(
            f'<text x="{label_w + p.data_file_count * scale + 4:.1f}" y="{y + 12}">'
            f"{p.small_file_count}/{p.data_file_count}</text>"
        )
    parts.append(
        f'<text x="{label_w}" y="{height - 4}">small / all data files, worst partitions first</text>'
    )
    parts.append("</svg>")
    return "".join(parts)


def _timeline_svg(health: TableHealth, limit: int = 400) -> str:
    points = list(health.snapshots)[-limit:]
    if not points:
        return '<p class="muted">no snapshots</p>'
    width, height, left, bottom = 360, 180, 36, 34
    t0, t1 = points[0].committed_at_ms, points[-1].committed_at_ms
    span = max(t1 - t0, 1)
    top = max((p.total_data_files or 0) for p in points) or 1

    def xy(ms: int, files: int) -> tuple[float, float]:
        x = left + (width - left - 10) * (ms - t0) / span if len(points) > 1 else (width + left) / 2
        y = height - bottom - (height - bottom - 10) * files / top
        return x, y

    parts = [f'<svg viewBox="0 0 {width} {height}" width="100%" role="img" aria-label="snapshot timeline">']
    path = " ".join(
        f"{'M' if i == 0 else 'L'}{x:.1f},{y:.1f}"
        for i, (x, y) in enumerate(xy(p.committed_at_ms, p.total_data_files or 0) for p in points)
    )
    parts.append(f'<path d="{path}" fill="none" stroke="#adb5bd" stroke-width="1"/>')
    for p in points:
        x, y = xy(p.committed_at_ms, p.total_data_files or 0)
        colour = _OPERATION_COLOURS.get(p.operation or "", _OTHER_COLOUR)
        parts.append(
            f'<circle class="snapshot" cx="{x:.1f}" cy="{y:.1f}" r="3" fill="{colour}"><title>{p.snapshot_id} '
            f"{_e(p.operation)} at {_ts(p.committed_at_ms)}: {p.total_data_files} data files</title></circle>"
        )
    parts.append(
        f'<line x1="{left}" y1="{height - bottom}" x2="{width - 10}" y2="{height - bottom}" stroke="#adb5bd"/>'
    )
    parts.append(f'<text x="{left - 4}" y="14" text-anchor="end">{top}</text>')
    parts.append(f'<text x="{left}" y="{height - bottom + 12}">{_ts(t0)}</text>')
    parts.append(f'<text x="{width - 10}" y="{height - bottom + 12}" text-anchor="end">{_ts(t1)}</text>')
    legend_x = left
    for op, colour in _OPERATION_COLOURS.items():
        parts.append(f'<circle cx="{legend_x + 4}" cy="{height - 8}" r="3" fill="{colour}"/>')
        parts.append(f'<text x="{legend_x + 10}" y="{height - 5}">{op}</text>')
        legend_x += 62
    parts.append("</svg>")
    return "".join(parts)


def _cards(health: TableHealth, th: HealthThresholds) -> str:
    age = health.oldest_snapshot_age_hours
    return (
        '<div class="cards">'
        + "".join(
            [
                _card("data files", f"{health.data_file_count:,}"),
                _card(
                    "small-file ratio",
                    f"{health.small_file_ratio:.0%}",
                    health.small_file_ratio > th.small_file_ratio,
                ),
                _card("avg file size", _size(health.avg_data_file_bytes)),
                _card(
                    "delete files (pos/eq)",
                    f"{health.position_delete_file_count}/{health.equality_delete_file_count}",
                    health.delete_file_ratio > th.delete_file_ratio,
                ),
                _card(
                    "manifests (avg)",
                    f"{health.manifest_count} ({_size(health.avg_manifest_bytes)})",
                    health.manifest_count > th.max_manifests
                    and health.avg_manifest_bytes < th.small_manifest_bytes,
                ),
                _card("snapshots", f"{health.snapshot_count}"),
                _card("oldest snapshot", "-" if age is None else f"{age:.1f} h"),
                _card("data size", _size(health.data_bytes)),
                _card("rows", f"{health.record_count:,}"),
            ]
        )
        + "</div>"
    )


def _status_badge(status: str) -> str:
    css = {"succeeded": "b-ok", "ok": "b-ok", "planned": "b-warn", "conflict": "b-warn", "skipped": "b-skip"}
    return f'<span class="badge {css.get(status, "b-bad")}">{_e(status)}</span>'


def _maintenance_section(report: TableReport) -> str:
    rows = []
    for op in report.operations:
        result = op.outcome.summary() if op.outcome is not None else ""
        rows.append(
            f"<tr><td>{_e(op.plan.name)}</td><td>{_status_badge(op.status)}</td>"
            f"<td>{_e(op.plan.reason)}</td><td>{_e(result)}</td></tr>"
        )
    before, after = report.health_before, report.health_after
    compare = ""
    if before is not None and after is not None:
        pairs = [
            ("data files", before.data_file_count, after.data_file_count),
            ("small files", before.small_file_count, after.small_file_count),
            ("delete files", before.delete_file_count, after.delete_file_count),
            ("manifests", before.manifest_count, after.manifest_count),
            ("snapshots", before.snapshot_count, after.snapshot_count),
        ]
        compare = (
            "<h3>before / after</h3><table><tr><th></th><th class='num'>before</th><th class='num'>after</th></tr>"
            + "".join(
                f"<tr><td>{k}</td><td class='num'>{b}</td><td class='num'>{a}</td></tr>" for k, b, a in pairs
            )
            + "</table>"
        )
    props = "".join(f"<li>{_e(c.describe())}</li>" for c in report.properties)
    return (
        f"<h3>maintenance run: {_status_badge(report.status)}</h3>"
        + (f"<p>error: {_e(report.error)}</p>" if report.error else "")
        + (f"<p>table properties:</p><ul>{props}</ul>" if props else "")
        + "<table><tr><th>operation</th><th>status</th><th>why</th><th>result</th></tr>"
        + "".join(rows)
        + "</table>"
        + compare
    )


def render_health_html(
    healths: Sequence[TableHealth],
    *,
    title: str = "Iceberg table health",
    generated_at: datetime | None = None,
    thresholds: Mapping[str, HealthThresholds] | None = None,
    maintenance: MaintenanceReport | None = None,
) -> str:
    """The report as one HTML document.

    Args:
        healths: tables to show (for a maintenance run, the latest health of each).
        title: page title.
        generated_at: shown in the header (default: now).
        thresholds: per table (``TableRef.sql``) thresholds to colour figures; defaults otherwise.
        maintenance: a maintenance run to show with each table.
    """
    moment = (generated_at or datetime.now(timezone.utc)).strftime("%Y-%m-%d %H:%M UTC")
    thresholds = thresholds or {}
    summary_rows = "".join(
        f"<tr><td><a href='#t{i}'>{_e(h.table.sql)}</a></td><td class='num'>{h.data_file_count:,}</td>"
        f"<td class='num'>{h.small_file_ratio:.0%}</td><td class='num'>{_e(_size(h.avg_data_file_bytes))}</td>"
        f"<td class='num'>{h.delete_file_count}</td><td class='num'>{h.manifest_count}</td>"
        f"<td class='num'>{h.snapshot_count}</td><td class='num'>{_e(_size(h.data_bytes))}</td>"
        f"<td class='num'>{h.record_count:,}</td></tr>"
        for i, h in enumerate(healths)
    )
    sections = []
    for i, health in enumerate(healths):
        th = thresholds.get(health.table.sql, HealthThresholds())
        run = ""
        if maintenance is not None:
            try:
                run = _maintenance_section(maintenance.table(health.table.sql))
            except KeyError:
                run = ""
        sections.append(
            f"<section id='t{i}'><h2>{_e(health.table.sql)} "
            f"<span class='muted'>{_e(health.table.layer)} &middot; snapshot {_e(health.current_snapshot_id)} "
            f"&middot; target file size {_e(_size(health.target_file_size_bytes))}</span></h2>"
            + _cards(health, th)
            + "<div class='charts'>"
            + f"<div class='chart'><h3>file-size distribution</h3>{_histogram_svg(health)}</div>"
            + f"<div class='chart'><h3>small files per partition</h3>{_partitions_svg(health)}</div>"
            + f"<div class='chart'><h3>snapshot timeline (data files)</h3>{_timeline_svg(health)}</div>"
            + "</div>"
            + run
            + "</section>"
        )
    return (
        "<!DOCTYPE html><html lang='en'><head><meta charset='utf-8'>"
        f"<title>{_e(title)}</title><style>{_CSS}</style></head><body>"
        f"<h1>{_e(title)}</h1><p class='muted'>generated {moment} by lean-ops &middot; {len(healths)} table(s)</p>"
        "<section><table><tr><th>table</th><th class='num'>data files</th><th class='num'>small</th>"
        "<th class='num'>avg size</th><th class='num'>deletes</th><th class='num'>manifests</th>"
        "<th class='num'>snapshots</th><th class='num'>size</th><th class='num'>rows</th></tr>"
        f"{summary_rows}</table></section>" + "".join(sections) + "</body></html>"
    )
