"""Usage and customer reports as one self-contained HTML file (`usage show --html`, `customer show --html`).

Built from the same dicts as `--json` (UsageReport.to_dict(), the customer profile), never
re-queried. The file needs no network: the CSS and the tooltip script are inline, the charts are
hand-written SVG (report_chart), and a Content-Security-Policy of `default-src 'none'` (the inline
style and script allowed by their sha256 only) makes the browser refuse any request the page could
make, and any script a hostile name could smuggle in. Every text from the database goes through
html.escape. A page is readable printed and without script: a table of the exact figures sits
under each chart; the script only adds the tooltip on hover and keyboard focus.
"""

from __future__ import annotations

import base64
import hashlib
from html import escape
from pathlib import Path
from typing import Iterable

from tollgate import texts
from tollgate.report_chart import allowance_text, chart

CSS = """
:root{color-scheme:light dark;--bg:#fff;--fg:#1b1f24;--muted:#5b6470;--line:#d5d9de;--bar:#2f6fbf;
--bar-hi:#174a8b;--allow:#b3261e;--reset:#7a5a00;--card:#f6f8fa;--focus:#e8a200}
@media (prefers-color-scheme:dark){:root{--bg:#111418;--fg:#e6e9ed;--muted:#9aa4b0;--line:#343b44;
--bar:#5b9cf0;--bar-hi:#9cc4ff;--allow:#ff7b72;--reset:#e3b341;--card:#1a1f25;--focus:#ffd166}}
*{box-sizing:border-box}
body{margin:0 auto;max-width:60rem;padding:1rem;background:var(--bg);color:var(--fg);
font:15px/1.45 system-ui,-apple-system,"Segoe UI",Roboto,sans-serif}
h1{font-size:1.4rem;margin:.2rem 0}h2{font-size:1.15rem;margin:1.6rem 0 .4rem}h3{font-size:1rem;margin:0 0 .3rem}
.muted,.caption{color:var(--muted)}.caption{font-size:.9rem;margin:.3rem 0}
section.feature{background:var(--card);border:1px solid var(--line);border-radius:8px;padding:.8rem;margin:1rem 0}
.figures{display:flex;flex-wrap:wrap;gap:.3rem 1.4rem;margin:.2rem 0 .5rem}.figures b{font-variant-numeric:tabular-nums}
figure{position:relative;margin:0;max-width:40rem}svg.chart{width:100%;height:auto;display:block}
.grid{stroke:var(--line);stroke-width:1}.axis{stroke:var(--muted);stroke-width:1}
.tick,.note{fill:var(--muted);font-size:13px}.note{font-size:12px}
.bar .hit{fill:transparent}.bar .value{fill:var(--bar)}.bar:hover .value,.bar:focus .value{fill:var(--bar-hi)}
.bar:focus{outline:none}.bar:focus .hit{fill:none;stroke:var(--focus);stroke-width:2}
.allowance{stroke:var(--allow);stroke-width:2;stroke-dasharray:6 4}.reset{stroke:var(--reset);stroke-width:1.5;stroke-dasharray:3 3}
.tip{position:absolute;pointer-events:none;background:var(--fg);color:var(--bg);border-radius:6px;
padding:.35rem .55rem;font-size:.85rem;line-height:1.3;white-space:nowrap;z-index:2}
.tip strong{font-size:1rem}
table{border-collapse:collapse;width:100%;font-size:.9rem;margin:.5rem 0}
th,td{text-align:left;padding:.25rem .5rem;border-bottom:1px solid var(--line);vertical-align:top}
td.n,th.n{text-align:right;font-variant-numeric:tabular-nums}
.scroll{overflow-x:auto}details summary{cursor:pointer;color:var(--muted)}
dl.fields{display:grid;grid-template-columns:max-content 1fr;gap:.15rem 1rem;margin:.5rem 0}
dl.fields dt{color:var(--muted)}dl.fields dd{margin:0;overflow-wrap:anywhere}
svg.meter{width:7rem;height:.7rem;vertical-align:middle}.meter .track{fill:var(--line)}.meter .fill{fill:var(--bar)}
.meter .over{fill:var(--allow)}code{overflow-wrap:anywhere}a{color:var(--bar-hi)}
section.feature>h2,section.feature>h3{margin-top:0}
@media (max-width:32rem){body{padding:.6rem;font-size:14px}th,td{padding:.2rem .3rem}
section.feature{padding:.6rem}.tick{font-size:19px}.note{font-size:17px}}
@media print{.tip{display:none}section.feature{break-inside:avoid}details>*{display:block}}
""".strip()

SCRIPT = """
(function(){
document.querySelectorAll('figure').forEach(function(fig){
 var tip=fig.querySelector('.tip');if(!tip)return;
 function hide(){tip.hidden=true;}
 function show(bar){
  tip.querySelector('strong').textContent=bar.dataset.figure;
  tip.querySelector('.dates').textContent=bar.dataset.dates;
  tip.querySelector('.share').textContent=bar.dataset.share;
  tip.hidden=false;
  var f=fig.getBoundingClientRect(),b=bar.querySelector('.value').getBoundingClientRect();
  var left=b.left-f.left+b.width/2-tip.offsetWidth/2;
  tip.style.left=Math.max(0,Math.min(left,f.width-tip.offsetWidth))+'px';
  tip.style.top=Math.max(0,b.top-f.top-tip.offsetHeight-6)+'px';
 }
 fig.querySelectorAll('.bar').forEach(function(bar){
  bar.addEventListener('mouseenter',function(){show(bar);});
  bar.addEventListener('focus',function(){show(bar);});
  bar.addEventListener('mouseleave',hide);bar.addEventListener('blur',hide);
 });
 document.addEventListener('keydown',function(e){if(e.key==='Escape')hide();});
});
})();
""".strip()


def _hash(text: str) -> str:
    return "sha256-" + base64.b64encode(hashlib.sha256(text.encode()).digest()).decode()


POLICY = (f"default-src 'none'; style-src '{_hash(CSS)}'; script-src '{_hash(SCRIPT)}'; "
          "img-src data:; base-uri 'none'; form-action 'none'")
"""No request of any kind; only this file's own style and script run."""


def document(title: str, body: str) -> str:
    """A whole page: `title` is plain text (escaped here), `body` is HTML made with `_e`."""
    return (
        '<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8">\n'
        f'<meta http-equiv="Content-Security-Policy" content="{POLICY}">\n'
        '<meta name="viewport" content="width=device-width, initial-scale=1">\n'
        '<meta name="color-scheme" content="light dark">\n<link rel="icon" href="data:,">\n'
        f"<title>{escape(title)}</title>\n<style>{CSS}</style></head>\n<body>\n{body}\n"
        f"<script>{SCRIPT}</script>\n</body></html>\n"
    )


def _e(value: object) -> str:
    """Any value from the database as HTML text (None: a dash)."""
    return "-" if value is None else escape(str(value))


def _table(columns: Iterable[str], rows: Iterable[Iterable[str]], *, numeric: Iterable[str] = ()) -> str:
    """A table; `rows` hold HTML already escaped (made with `_e`); `numeric` columns align right."""
    columns, numeric = list(columns), set(numeric)
    cls = [' class="n"' if c in numeric else "" for c in columns]
    head = "".join(f"<th{k} scope=\"col\">{escape(c)}</th>" for c, k in zip(columns, cls))
    body = "".join("<tr>" + "".join(f"<td{k}>{cell}</td>" for cell, k in zip(row, cls)) + "</tr>" for row in rows)
    return f'<div class="scroll"><table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table></div>'


def _date(text: str | None, *, never: str = "never") -> str:
    """An RFC 3339 time as its date (and time when not midnight), escaped."""
    if text is None:
        return never
    day, _, rest = text.partition("T")
    clock = rest[:5]
    return escape(day if clock in ("", "00:00") else f"{day} {clock}")


# -- usage -----------------------------------------------------------------------------------------------


def usage_sections(report: dict, *, level: int = 2) -> str:
    """Per metered feature: its figures, the chart (with its tooltip) and the table of exact figures."""
    if not report["features"]:
        return '<p class="muted">No metered usage or allowance in this range.</p>'
    return "\n".join(_feature(f, report, level) for f in report["features"])


def _feature(f: dict, report: dict, level: int) -> str:
    drawn = chart(f, report)
    unit = f" {f['unit']}" if f["unit"] else ""
    pct = f" ({_e(f['percent_used'])}% of the allowance)" if f["percent_used"] is not None else ""
    if f["reset"] in (None, "never"):
        period = "all time" if f["period_start"] is None else f"since {_date(f['period_start'])}"
    else:
        period = f"since {_date(f['period_start'])}, resets {_date(f['reset_at'])}"
    figures = [
        ("total in range", _e(f["total"] + unit)),
        ("this period", f"{_e(f['used'] + unit)}{pct}"),
        ("allowance", _e(allowance_text(f))),
        ("period", period),
    ]
    if f["remaining"] is not None:
        figures.insert(2, ("remaining", _e(f["remaining"] + unit)))
    if f["corrections"] != "0":
        figures.append(("corrections (voids)", _e(f["corrections"])))
    columns = (report["by"], f"quantity{unit}", "% of allowance")
    rows = [(_e(p.label) + "".join(f'<br><small class="muted">{escape(note)}</small>'
                                   for note in (p.dates if p.dates != p.label else "", reset) if note),
             _e(p.text), _e(pct_ if pct_ is not None else "-")) for p, pct_, reset in drawn.rows]
    h = f"h{level}"
    return (
        f'<section class="feature" aria-labelledby="f-{_e(_slug(f["feature"]))}">'
        f'<{h} id="f-{_e(_slug(f["feature"]))}">{_e(f["name"])} <span class="muted">({_e(f["feature"])})</span></{h}>'
        '<div class="figures">' + "".join(f"<span>{k}: <b>{v}</b></span>" for k, v in figures) + "</div>"
        f'<figure>{drawn.svg}<div class="tip" hidden aria-hidden="true"><strong></strong><br>'
        '<span class="dates"></span><br><span class="share"></span></div></figure>'
        + (f'<p class="caption">{escape(drawn.caption)}</p>' if drawn.caption else "")
        + f"<details open><summary>Exact figures per {_e(report['by'])}</summary>"
        + _table(columns, rows,
                 numeric=(f"quantity{unit}", "% of allowance"))
        + "</details></section>"
    )


def _slug(text: str) -> str:
    return "".join(c if c.isalnum() else "-" for c in text)


def _span(report: dict) -> str:
    """`2026-10-01 to 2026-10-31 (UTC)`: the first and the last day shown."""
    from datetime import datetime, timedelta

    last = datetime.fromisoformat(report["to"].replace("Z", "+00:00")) - timedelta(days=1)
    return f"{_date(report['from'])} to {last:%Y-%m-%d} (UTC)"


def usage_page(report: dict) -> str:
    """`usage show --html`: the usage report dict (UsageReport.to_dict()) as a page."""
    title = f"Usage of {report['customer']} by {report['by']}"
    body = (f"<header><h1>{escape(title)}</h1><p class=\"muted\">{_span(report)}. "
            "Hover over or focus a bar for its exact figure.</p></header>\n<main>"
            + usage_sections(report) + _corrections(report) + "</main>")
    return document(title, body)


def _corrections(report: dict) -> str:
    if not report["corrections"]:
        return ""
    rows = [(_e(c["feature"]), _e(c["quantity"]), _date(c["at"]), _e(c["voids"]), _e(c["reason"]))
            for c in report["corrections"]]
    return "<h2>Corrections (voids) in this range</h2>" + _table(
        ("feature", "quantity", "at", "voids", "reason"), rows, numeric=("quantity",))


# -- customer --------------------------------------------------------------------------------------------


def customer_page(profile: dict, usage: dict) -> str:
    """`customer show --html`: the profile (the `customer show --json` dict) and its usage report."""
    fields = [("identifier", profile["identifier"]), ("billing id", profile["billing_id"]),
              ("name", profile["name"]), ("email", profile["email"]), ("status", profile["status"]),
              ("created", profile["created_at"]), ("updated", profile["updated_at"]),
              ("archived", profile["archived_at"])]
    parts = [
        f"<header><h1>{_e(profile['name'])} <span class=\"muted\">({_e(profile['identifier'])})</span></h1></header><main>",
        '<dl class="fields">' + "".join(f"<dt>{k}</dt><dd>{_e(v)}</dd>" for k, v in fields) + "</dl>",
        _section("Subscriptions", profile["subscriptions"], _subscriptions),
        _section("Entitlements", profile["entitlements"], _entitlements),
        f"<h2>Usage</h2><p class=\"muted\">By {_e(usage['by'])}, {_span(usage)}.</p>" + usage_sections(usage, level=3),
        _section("License keys", profile["licenses"], _licenses),
        _section("Downloads", profile["downloads"], _downloads),
        _section("Links", profile["links"], _links),
        "</main>",
    ]
    return document(f"Customer {profile['identifier']}: {profile['name']}", "\n".join(parts))


def _section(title: str, rows: list[dict], render) -> str:
    return f"<h2>{escape(title)}</h2>" + (render(rows) if rows else '<p class="muted">None.</p>')


def _subscriptions(rows: list[dict]) -> str:
    return _table(("id", "plan", "status", "price", "start", "period end", "trial end"), [
        (_e(s["id"]), _e(s["plan"]), _e(texts.subscription_status_text(s)), _e(texts.price_text(s)),
         _date(s["start"]), _date(s["current_period_end"]), _date(s["trial_end"], never="-"))
        for s in rows])


def _entitlements(rows: list[dict]) -> str:
    return _table(("feature", "type", "grants", "used", "remaining", "usage", "resets", "source"), [
        (_e(e["feature"]), _e(e["type"]), _e(texts.grants_text(e)), _e(texts.number_text(e["used"] or "")),
         _e(texts.number_text(e["remaining"]) if e["remaining"] is not None else "unlimited")
         if e["type"] == "metered" else "",
         _meter(e), _date(e["reset_at"]) if e["type"] == "metered" else "", _e(e["source"]))
        for e in rows], numeric=("used", "remaining"))


def _meter(e: dict) -> str:
    """A usage bar for a metered allowance (red past the limit; the figures tell the overage)."""
    from decimal import Decimal

    from tollgate.report_chart import percent_of

    if e["type"] != "metered" or e["unlimited"] or e["limit"] is None:
        return ""
    used, limit = Decimal(e["used"]), Decimal(e["limit"])
    pct = percent_of(used, limit)
    share = min(used / limit, Decimal(1)) if limit > 0 else Decimal(1 if used > 0 else 0)
    over = " over" if used > limit else ""
    label = f"{e['used']} of {e['limit']} used" + (f" ({pct}%)" if pct is not None else "")
    return (f'<svg class="meter" viewBox="0 0 100 10" preserveAspectRatio="none" role="img" aria-label="{escape(label)}">'
            f'<rect class="track" width="100" height="10" rx="2"/><rect class="fill{over}" '
            f'width="{float(share) * 100:.1f}" height="10" rx="2"/></svg> {_e(pct if pct is not None else "-")}%')


def _licenses(rows: list[dict]) -> str:
    def activations(k: dict) -> str:
        return _e(texts.activations_text(len(k["activations"]), k["activation_limit"])) + "".join(
            f"<br><span class=\"muted\">{_e(a['name'])}</span>" for a in k["activations"])

    return _table(("key", "plan", "status", "activations", "expires"), [
        (f"<code>{_e(k['key'])}</code>", _e(k["plan"]),
         _e(texts.license_status_text(k["status"], k["revoked_at"], k["replaced_by"])), activations(k),
         _date(k["expires_at"])) for k in rows])


def _downloads(rows: list[dict]) -> str:
    return _table(("name", "plan", "size", "sha256", "enabled"), [
        (_e(d["name"]), _e(d["plan"]), _e(texts.size_text(d["size"])), f"<code>{_e(d['sha256'])}</code>",
         "yes" if d["enabled"] else "no (disabled)") for d in rows], numeric=("size",))


def _links(rows: list[dict]) -> str:
    return _table(("name", "plan", "address"), [
        (_e(link["name"]), _e(link["plan"]),
         f'<a href="{_e(link["url"])}" rel="noopener noreferrer">{_e(link["url"])}</a>') for link in rows])


def write(path: str | Path, page: str) -> None:
    """Write the page atomically (temp file, fsync, rename), replacing FILE as `catalog export` does."""
    from tollgate.files import write_text_atomic

    write_text_atomic(Path(path), page)
