"""Figures inside a table's free text (what a plan or entitlement grants, a usage charge, an invoice's
tier line, a plan's prices) are grouped for people, piped or at a terminal, as the number columns
are; --json and --csv keep the plain figures. Fractions stay exact (0.0000012)."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from conftest import ok
from terminal import in_terminal, piped

SAMPLE = Path(__file__).resolve().parent.parent / "sample-catalog.toml"
ANSI = re.compile(r"\x1b\[[0-9;?]*[A-Za-z]")

# command -> what its table shows (each a token a narrow terminal never splits)
SHOWN = {
    ("entitlements", "globex"): ["50,000,000", "token / month"],
    ("plan", "show", "ai-scale"): ["50,000,000 / month", "50,000,000", "500,000,000:", "0.0000012"],
    ("invoice", "preview", "globex", "--period", "2026-10"): ["500,000,000:", "21,500,000", "0.0000012"],
    ("plan", "list"): ["11,000.00", "12,000.00", "2,000.00"],
}


@pytest.fixture
def shop(cli):
    def run(*args):
        return ok(cli(*args))

    run("catalog", "import", str(SAMPLE))
    run("customer", "add", "Globex", "--id", "globex")
    run("sub", "add", "globex", "ai-scale", "--interval", "month", "--start", "2026-10-15")
    run("usage", "report", "globex", "ai-tokens", "71500000", "--at", "2026-10-20T09:00:00Z", "--id", "e1")
    return run


def test_text_figures_are_grouped_in_piped_tables(shop):
    wanted = {
        ("entitlements", "globex"): ["50,000,000 token / month"],
        ("plan", "show", "ai-scale"): ["50,000,000 / month",
                                       "first 50,000,000 included; up to 500,000,000: 0.0000012 per unit"],
        ("invoice", "preview", "globex", "--period", "2026-10"): ["tier 0 – 500,000,000: 21,500,000 × 0.0000012"],
        ("plan", "list"): ["11,000.00 EUR / year, 12,000.00 USD / year"],
    }
    for args, texts in wanted.items():
        run = piped(list(args))
        assert run.returncode == 0, run.stderr
        for text in texts:
            assert text in run.stdout, (args, run.stdout)


@pytest.mark.parametrize("args", list(SHOWN), ids=" ".join)
def test_text_figures_are_grouped_at_80_columns(shop, args):
    run = in_terminal(list(args), columns=80)
    assert run.code == 0, run.terminal
    shown = ANSI.sub("", run.terminal)
    for token in SHOWN[args]:
        assert token in shown, (token, shown)


def test_json_and_csv_keep_the_plain_figures(shop):
    [tokens] = [e for e in shop("entitlements", "globex", "--json").json() if e["feature"] == "ai-tokens"]
    assert tokens["limit"] == "50000000"
    plan = shop("plan", "show", "ai-scale", "--json").json()
    [grant] = [e for e in plan["entitlements"] if e["feature"] == "ai-tokens"]
    [charge] = [c for c in plan["usage_charges"] if c["feature"] == "ai-tokens"]
    assert grant["limit"] == "50000000"
    assert charge["included"] == 50000000 and charge["tiers"][0] == {"up_to": 500000000, "unit_price": "0.0000012"}
    preview = shop("invoice", "preview", "globex", "--period", "2026-10", "--json")
    assert "," not in "".join(re.findall(r'"[\d.,]+"', preview.stdout))  # no figure grouped
    [tier] = [t for line in preview.json()["lines"] for t in line["tiers"]]
    assert (tier["from"], tier["up_to"], tier["quantity"], tier["unit_price"]) == ("0", "500000000", "21500000", "0.0000012")
    [enterprise] = [p for p in shop("plan", "list", "--json").json() if p["identifier"] == "enterprise"]
    assert {"interval": "year", "currency": "EUR", "amount": "11000.00"}.items() <= enterprise["prices"][0].items()
    assert '"11000.00 EUR / year, 12000.00 USD / year"' in shop("plan", "list", "--csv").stdout


def test_number_text_groups_the_whole_part_and_keeps_the_fraction():
    from decimal import Decimal

    from tollgate.texts import money_text, number_text

    assert [number_text(v) for v in ("62500000", "0.0000012", "-1234567.125", 1000, Decimal("1E+3"), "unlimited", "")] == [
        "62,500,000", "0.0000012", "-1,234,567.125", "1,000", "1,000", "unlimited", ""]
    assert (money_text("11000", "EUR"), money_text(Decimal("1500"), "JPY"), money_text("1234.5", "KWD")) == (
        "11,000.00", "1,500", "1,234.500")
