"""Draw the Grafana dashboard's panels from a real Prometheus, as one HTML page.

Grafana does not run everywhere the portal is developed (no Debian package);
this reads ``deploy/grafana/dashboards/portal.json``, asks Prometheus for each
panel's queries over a time range (``/api/v1/query_range``, exactly the
queries Grafana sends) and draws every panel as an SVG line chart in the
dashboard's layout. The tests open the page in Chromium for the README's
screenshot. Usage:

    python deploy/grafana/render_panels.py --prometheus http://127.0.0.1:9090 \\
        --minutes 5 --out var/dashboard.html
"""

import argparse
import html
import json
import re
import time
import urllib.parse
import urllib.request
from pathlib import Path

DASHBOARD = Path(__file__).resolve().parent / "dashboards" / "portal.json"
COLOURS = ["#3559e0", "#12b76a", "#f79009", "#d92d20", "#7a5af8", "#0ba5ec", "#ee46bc"]
WIDTH, HEIGHT = 560, 230
PLOT = (52, 30, WIDTH - 12, HEIGHT - 48)  # left, top, right, bottom


def query_range(prometheus: str, expr: str, start: float, end: float, step: float):
    params = urllib.parse.urlencode(
        {"query": expr, "start": start, "end": end, "step": step}
    )
    with urllib.request.urlopen(f"{prometheus}/api/v1/query_range?{params}") as answer:
        body = json.load(answer)
    if body.get("status") != "success":
        raise RuntimeError(f"{expr}: {body}")
    return body["data"]["result"]


def legend(template: str, labels: dict[str, str]) -> str:
    return re.sub(
        r"\{\{\s*(\w+)\s*\}\}", lambda m: labels.get(m.group(1), ""), template
    )


def panel_series(prometheus, panel, start, end, step):
    series = []
    for target in panel["targets"]:
        for result in query_range(prometheus, target["expr"], start, end, step):
            points = [(float(t), float(v)) for t, v in result["values"]]
            points = [(t, v) for t, v in points if v == v and abs(v) != float("inf")]
            if points:
                name = legend(target.get("legendFormat", ""), result["metric"])
                series.append((name.strip() or target["expr"][:40], points))
    return series


def number(value: float, unit: str) -> str:
    if unit == "s":
        if value and value < 1:
            return f"{value * 1000:.3g} ms"
        return f"{value:.3g} s"
    if unit == "ops":
        return f"{value:.3g}/s"
    return f"{value:.3g}"


def svg(panel, series, start, end) -> str:
    left, top, right, bottom = PLOT
    unit = panel.get("fieldConfig", {}).get("defaults", {}).get("unit", "")
    peak = max((v for _, points in series for _, v in points), default=0) or 1
    low = min(0.0, min((v for _, points in series for _, v in points), default=0))

    def x(t: float) -> float:
        return left + (t - start) / ((end - start) or 1) * (right - left)

    def y(v: float) -> float:
        return bottom - (v - low) / ((peak - low) or 1) * (bottom - top)

    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{WIDTH}" height="{HEIGHT}">',
        f'<rect width="{WIDTH}" height="{HEIGHT}" fill="#181b1f" rx="4"/>',
        f'<text x="10" y="19" fill="#ccccdc" font-size="13" font-weight="600">'
        f"{html.escape(panel['title'])}</text>",
    ]
    for fraction in (0, 0.5, 1):
        value = low + (peak - low) * fraction
        parts.append(
            f'<line x1="{left}" x2="{right}" y1="{y(value):.1f}" y2="{y(value):.1f}" '
            'stroke="#2c3235"/>'
            f'<text x="{left - 4}" y="{y(value) + 4:.1f}" fill="#8e8e8e" '
            f'font-size="10" text-anchor="end">'
            f"{html.escape(number(value, unit))}</text>"
        )
    for minute in range(int(start // 60) + 1, int(end // 60) + 1):
        at = minute * 60
        parts.append(
            f'<text x="{x(at):.1f}" y="{bottom + 13}" fill="#8e8e8e" font-size="10" '
            f'text-anchor="middle">{time.strftime("%H:%M", time.gmtime(at))}</text>'
        )
    if not series:
        parts.append(
            f'<text x="{WIDTH / 2}" y="{HEIGHT / 2}" fill="#8e8e8e" font-size="12" '
            'text-anchor="middle">No data</text>'
        )
    for index, (name, points) in enumerate(series[:7]):
        colour = COLOURS[index % len(COLOURS)]
        path = " ".join(f"{x(t):.1f},{y(v):.1f}" for t, v in points)
        parts.append(
            f'<polyline points="{path}" fill="none" stroke="{colour}" '
            'stroke-width="1.6"/>'
        )
        lx = 12 + (index % 3) * 180
        ly = HEIGHT - 22 + (index // 3) * 11
        parts.append(
            f'<rect x="{lx}" y="{ly - 7}" width="10" height="3" fill="{colour}"/>'
            f'<text x="{lx + 14}" y="{ly}" fill="#ccccdc" font-size="10">'
            f"{html.escape(name[:28])}</text>"
        )
    parts.append("</svg>")
    return "".join(parts)


def render(
    prometheus: str, minutes: float, out: Path, end: float | None = None
) -> Path:
    dashboard = json.loads(DASHBOARD.read_text())
    end = end or time.time()
    start = end - minutes * 60
    step = max(1.0, (end - start) / 240)
    cells = []
    for panel in sorted(
        dashboard["panels"], key=lambda p: (p["gridPos"]["y"], p["gridPos"]["x"])
    ):
        cells.append(
            svg(panel, panel_series(prometheus, panel, start, end, step), start, end)
        )
    page = (
        "<!doctype html><meta charset='utf-8'><title>"
        f"{html.escape(dashboard['title'])}</title>"
        "<body style='margin:0;background:#111217;font-family:sans-serif'>"
        "<h1 style='color:#ccccdc;font-size:18px;margin:12px'>"
        f"{html.escape(dashboard['title'])}"
        " <small style='color:#8e8e8e;font-weight:normal'>· panels of "
        "deploy/grafana/dashboards/portal.json, queried from Prometheus</small></h1>"
        "<div style='display:grid;grid-template-columns:repeat(2,"
        f"{WIDTH}px);gap:8px;padding:0 12px 12px'>" + "".join(cells) + "</div></body>"
    )
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(page)
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--prometheus", default="http://127.0.0.1:9090")
    parser.add_argument("--minutes", type=float, default=30)
    parser.add_argument("--out", type=Path, default=Path("var/dashboard.html"))
    args = parser.parse_args()
    print(render(args.prometheus, args.minutes, args.out))


if __name__ == "__main__":
    main()
