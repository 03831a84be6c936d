"""`usage show --html` and `customer show --html`: one self-contained file from the same dict as
--json, exact figures, hostile names escaped, written atomically. (The browser's view of the same
pages: tests/test_report_browser.py.)"""

from __future__ import annotations

import re
from datetime import timedelta
from decimal import Decimal
from html.parser import HTMLParser

import pytest
from report_history import HOSTILE, TOKENS, build

from tollgate.clock import utcnow
from tollgate.report_chart import nice_top, percent_of


@pytest.fixture
def history(tg):
    build(tg)
    return tg


class Page(HTMLParser):
    """The parts of a page the tests look at: every tag with its attributes, and the text."""

    def __init__(self, text: str) -> None:
        super().__init__()
        self.tags: list[tuple[str, dict]] = []
        self.text: list[str] = []
        self.feed(text)

    def handle_starttag(self, tag, attrs):
        self.tags.append((tag, dict(attrs)))

    def handle_data(self, data):
        self.text.append(data)

    def all(self, tag: str, cls: str | None = None) -> list[dict]:
        return [a for t, a in self.tags if t == tag and (cls is None or cls in (a.get("class") or "").split())]


def _html(cli, tmp_path, *args: str) -> tuple[str, dict]:
    target = tmp_path / "report.html"
    written = cli(*args, "--html", str(target), "--json")
    assert written.exit_code == 0, written
    assert written.json() == {"html": str(target), "bytes": target.stat().st_size}
    data = cli(*args, "--json")
    return target.read_text(encoding="utf-8"), data.json()


def test_usage_page_shows_every_period_of_the_json_exactly(cli, history, tmp_path):
    page, data = _html(cli, tmp_path, "usage", "show", "globex", "--by", "week")
    parsed = Page(page)
    bars = parsed.all("g", "bar")
    series = [p for f in data["features"] for p in f["series"]]
    assert len(bars) == len(series) == 24  # 12 weeks x 2 features
    tokens = next(f for f in data["features"] if f["feature"] == "ai-tokens")
    assert [p["quantity"] for p in tokens["series"]] == TOKENS  # the history is what the JSON says
    for bar, period, in zip(bars, series):
        assert bar["tabindex"] == "0" and bar["role"] == "img"
        unit = "token" if period in tokens["series"] else "image"
        assert bar["data-figure"] == f"{period['quantity']} {unit}"
        assert bar["aria-label"].startswith(f"{period['period']} (") and f": {period['quantity']} {unit}" in bar["aria-label"]
    # the exact decimal of this week, never a float's rendering of it
    assert "4750000.5 token" in page and "4750000.50" not in page and "4.75e" not in page.lower()
    # % of allowance per bar: exact, one decimal (15750000 of 50000000 = 31.5%)
    assert any(b["data-share"] == "31.5% of the allowance" for b in bars)
    # the current period's total and % of the allowance, as the JSON has them
    text = " ".join(parsed.text)
    assert f"{tokens['used']} token ({tokens['percent_used']}% of the allowance)" in text
    # the allowance line (50000000 is within 4x the largest week) and the last reset marked
    assert len(parsed.all("line", "allowance")) == 1 and "allowance 50000000 token" in text
    assert len(parsed.all("line", "reset")) == 2  # one per feature: the current period's start
    assert f"reset {tokens['period_start'][:10]}" in text  # ... and in the table, for print


def test_the_page_needs_no_network_and_runs_only_its_own_script(cli, history, tmp_path):
    page, _ = _html(cli, tmp_path, "customer", "show", "hostile")
    parsed = Page(page)
    policy = next(a["content"] for a in parsed.all("meta") if a.get("http-equiv") == "Content-Security-Policy")
    assert policy.startswith("default-src 'none';") and "unsafe-inline" not in policy
    assert all("src" not in attrs for _, attrs in parsed.tags)  # no script, image or frame from anywhere
    assert [a["href"] for a in parsed.all("link")] == ["data:,"]
    # the only addresses are the plan's links, as links (nothing loads them)
    assert set(re.findall(r"https?://[^\s\"<]+", page)) == {a["href"] for a in parsed.all("a")} == {
        "https://community.markdown-studio.example/", "https://markdown-studio.example/changelog"}
    assert page.count("<script>") == 1 and len(page.encode()) < 100_000


def test_a_hostile_name_is_text(cli, history, tmp_path):
    page, data = _html(cli, tmp_path, "customer", "show", "hostile")
    assert data["name"] == HOSTILE
    assert HOSTILE not in page and "&lt;script&gt;alert(1)&lt;/script&gt;" in page
    assert HOSTILE in " ".join(Page(page).text)  # shown as what it is


def test_customer_page_has_the_whole_profile(cli, history, tmp_path):
    page, data = _html(cli, tmp_path, "customer", "show", "hostile")
    text = " ".join(Page(page).text)
    for heading in ("Subscriptions", "Entitlements", "Usage", "License keys", "Downloads", "Links"):
        assert f"<h2>{heading}</h2>" in page
    for sub in data["subscriptions"]:
        assert sub["id"] in text
    assert data["licenses"][0]["key"] in text and "0 / 3" in text
    assert data["downloads"][0]["sha256"] in text and "559 bytes" in text
    meters = Page(page).all("svg", "meter")
    assert len(meters) == 2  # ai-tokens and image-generations
    tokens = next(e for e in data["entitlements"] if e["feature"] == "ai-tokens")
    assert any(m["aria-label"] == f"{tokens['used']} of 50000000 used ({percent_of(Decimal(tokens['used']), Decimal(50000000))}%)"
               for m in meters)
    assert len(Page(page).all("g", "bar")) == 2 * 30  # the usage of the last 30 days, per feature


def test_one_feature_by_day_and_an_allowance_off_the_scale(cli, history, tmp_path):
    # 30 days from the Monday 4 weeks ago: its largest day is that Monday's 701.25 whatever today is
    monday = (utcnow() - timedelta(days=utcnow().weekday(), weeks=4)).date()
    window = ("--from", monday.isoformat(), "--to", (monday + timedelta(days=29)).isoformat())  # --to: the last day
    page, data = _html(cli, tmp_path, "usage", "show", "globex", "-f", "image-generations", "--by", "day", *window)
    assert [f["feature"] for f in data["features"]] == ["image-generations"]
    parsed = Page(page)
    assert len(parsed.all("g", "bar")) == 30
    # 5000 a month is more than 4x the largest day (701.25): the bars are scaled to themselves
    assert not parsed.all("line", "allowance")
    assert "is above this scale: the largest day is 14% of it" in page  # 701.25 / 5000 = 14.0%


def test_a_feature_nobody_grants_has_no_allowance(cli, tg, tmp_path):
    tg.add_customer("Acme")
    tg.create_feature("API calls", type="metered", identifier="api-calls", unit="call")
    tg.report_usage("acme", "api-calls", "0.5", at="2026-10-05T10:00:00Z")
    page, data = _html(cli, tmp_path, "usage", "show", "acme", "--from", "2026-10-01", "--to", "2026-10-07")
    assert data["features"][0]["limit"] is None
    assert "none (no subscription grants it)" in page and "0.5 call" in page
    assert not Page(page).all("line", "allowance") and "% of the allowance" not in page


def test_an_existing_file_is_replaced_and_a_bad_target_writes_nothing(cli, history, tmp_path):
    out = tmp_path / "out"
    out.mkdir()
    target = out / "report.html"
    target.write_text("old")
    assert cli("usage", "show", "globex", "--html", str(target)).exit_code == 0  # as catalog export FILE
    assert target.read_text().startswith("<!DOCTYPE html>")
    missing = cli("usage", "show", "globex", "--html", str(out / "no" / "such" / "r.html"))
    assert missing.exit_code == 2 and "does not exist" in missing.stderr
    folder = cli("usage", "show", "globex", "--html", str(out))
    assert folder.exit_code == 2 and "is a folder" in folder.stderr
    unknown = cli("usage", "show", "nobody", "--html", str(out / "n.html"))
    assert unknown.exit_code == 2 and not (out / "n.html").exists()
    assert sorted(p.name for p in out.iterdir()) == ["report.html"]  # no partial files left


def test_nice_scale_and_exact_percentages():
    assert nice_top(Decimal("16000000")) == (Decimal("20000000"), Decimal("5000000"))
    assert nice_top(Decimal("701.25")) == (Decimal("800"), Decimal("200"))
    assert nice_top(Decimal("0.3")) == (Decimal("0.4"), Decimal("0.1"))
    assert nice_top(Decimal("0")) == (Decimal(4), Decimal(1))
    assert nice_top(Decimal("4")) == (Decimal(4), Decimal(1))
    assert percent_of(Decimal("1"), Decimal("3")) == "33.3"
    assert percent_of(Decimal("0.05"), Decimal("100")) == "0"  # half-even, as usage's percent_used
    assert percent_of(Decimal("5"), None) is None and percent_of(Decimal("5"), Decimal(0)) is None
