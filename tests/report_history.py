"""A customer history for the HTML report tests (tests/test_report_html.py, test_report_browser.py):
the sample catalog, Globex on ai-scale since 10 weeks ago (50000000 ai-tokens / month) with twelve
weeks of usage, and a customer with a hostile name who also bought Markdown Studio (a license key,
a download and links)."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

from tollgate.clock import utcnow

SAMPLE = Path(__file__).resolve().parent.parent / "sample-catalog.toml"
HOSTILE = "<script>alert(1)</script>"
TOKENS = ["9500000", "12250000", "8000000", "15750000", "11000000", "13500000", "7250000", "16000000",
          "10500000", "14250000", "12000000", "4750000.5"]
"""ai-tokens per week, oldest first (the last, this week, has a fraction: exact decimals)."""
IMAGES = ["410", "388.5", "0", "520", "615", "470", "333", "701.25", "590", "402", "655", "120"]


def build(tg) -> None:
    tg.import_catalog(SAMPLE)
    tg.add_customer("Globex Corporation", identifier="globex", email="ap@globex.example")
    tg.add_customer(HOSTILE, identifier="hostile", email="x@example.com")
    now = utcnow().replace(microsecond=0)
    start = (now - timedelta(weeks=10, days=3)).replace(hour=0, minute=0, second=0)
    for customer in ("globex", "hostile"):
        tg.add_subscription(customer, "ai-scale", interval="month", currency="USD", start=start)
    tg.add_subscription("hostile", "markdown-studio-2", currency="USD")
    for weeks_ago, (tokens, images) in enumerate(zip(reversed(TOKENS), reversed(IMAGES))):
        # Monday 00:30 of each week (this week's Monday: never in the future)
        monday = (now - timedelta(days=now.weekday(), weeks=weeks_ago)).replace(hour=0, minute=30, second=0)
        for customer in ("globex", "hostile"):
            tg.report_usage(customer, "ai-tokens", tokens, at=monday, key=f"{customer}-t{weeks_ago}")
            if images != "0":
                tg.report_usage(customer, "image-generations", images, at=monday, key=f"{customer}-i{weeks_ago}")
