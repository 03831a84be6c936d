"""What a person at a terminal sees: the real `tollgate` program in a pseudo-terminal 80 and 64
columns wide (tests/terminal.py). Identifiers, keys, amounts and dates appear whole; tables fit the
width; lists are cut to 50 rows with a footer there and complete when piped; long output goes
through $PAGER; progress counts rows; NO_COLOR, TERM=dumb and --no-color print what a pipe gets."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from terminal import in_terminal, piped

SAMPLE = Path(__file__).resolve().parent.parent / "sample-catalog.toml"
ANSI = re.compile(r"\x1b\[[0-9;?]*[A-Za-z]")
WIDTHS = [80, 64]


def plain(text: str) -> str:
    return ANSI.sub("", text)


@pytest.fixture
def shop(cli):
    """The tour's shop: the sample catalog, three customers, subscriptions, usage and a license key."""
    def ok(*args):
        result = cli(*args)
        assert result.exit_code == 0, result
        return result

    ok("catalog", "import", str(SAMPLE))
    for name in ("Acme, Inc.", "Globex Corporation", "Zoe Writer"):
        ok("customer", "add", name, "--email", f"{name.split()[0].strip(',').lower()}@example.com")
    ok("customer", "add", "Zoe", "--id", "zoe")
    ok("sub", "add", "acme-inc", "pro", "--interval", "month", "--currency", "USD")
    ok("sub", "add", "globex-corporation", "ai-scale", "--interval", "month", "--start", "2026-10-15")
    ok("usage", "report", "globex-corporation", "ai-tokens", "62500000", "--at", "2026-10-20T09:00:00Z", "--id", "e1")
    ok("usage", "report", "globex-corporation", "ai-tokens", "9000000", "--at", "2026-10-22T09:00:00Z", "--id", "e2")
    ok("sub", "add", "zoe", "markdown-studio-2", "--currency", "USD")
    return cli


def lines_fit(text: str, width: int) -> None:
    too_long = [line for line in plain(text).splitlines() if len(line) > width]
    assert not too_long, too_long


@pytest.mark.parametrize("width", WIDTHS)
def test_invoice_amounts_and_quantities_appear_whole_and_grouped(shop, width):
    run = in_terminal(["invoice", "preview", "globex-corporation", "--period", "2026-10"], columns=width)
    assert run.code == 0, run.terminal
    shown = plain(run.terminal)
    lines_fit(shown, width)
    total = shop("invoice", "preview", "globex-corporation", "--period", "2026-10", "--json").json()["totals"]["USD"]
    assert re.search(rf"total\s+{re.escape(total)}\s+USD", shown), shown  # the total whole, on its line
    assert "71,500,000" in shown  # the quantity grouped, never split
    as_csv = shop("invoice", "preview", "globex-corporation", "--period", "2026-10", "--csv").stdout
    assert "71500000" in as_csv and "71,500,000" not in as_csv  # never grouped in --csv (nor --json)


COMMANDS = [
    (["license", "list"], lambda cli: [row["key"] for row in cli("license", "list", "--json").json()]),
    (["sub", "list"], lambda cli: [row["id"] for row in cli("sub", "list", "--json").json()]
                                  + [row["current_period_end"][:10] for row in cli("sub", "list", "--json").json()
                                     if row["current_period_end"]]),
    (["plan", "list"], lambda cli: [row["identifier"] for row in cli("plan", "list", "--json").json()]),
    (["entitlements", "acme-inc"], lambda cli: [row["feature"] for row in cli("entitlements", "acme-inc", "--json").json()]),
    (["customer", "show", "acme-inc"], lambda cli: [cli("customer", "show", "acme-inc", "--json").json()["billing_id"]]
                                                   + [s["id"] for s in cli("sub", "list", "--customer", "acme-inc", "--json").json()]),
    (["customer", "list"], lambda cli: [row["identifier"] for row in cli("customer", "list", "--json").json()]),
    (["log", "--limit", "8"], lambda cli: [row["at"][:19] for row in cli("log", "--limit", "8", "--json").json()]),
    (["product", "list"], lambda cli: [row["identifier"] for row in cli("product", "list", "--json").json()]),
    (["feature", "list"], lambda cli: [row["identifier"] for row in cli("feature", "list", "--json").json()]),
    (["usage", "show", "globex-corporation", "--feature", "ai-tokens", "--by", "month", "--from", "2026-09-01",
      "--to", "2026-10-31"], lambda cli: ["71,500,000", "50,000,000", "2026-10", "2026-12-15"]),
]


@pytest.mark.parametrize("width", WIDTHS)
def test_identifiers_keys_and_dates_appear_whole(shop, width):
    for args, tokens in COMMANDS:
        expected = tokens(shop)
        assert expected, args
        run = in_terminal(args, columns=width)
        assert run.code == 0, run.terminal
        shown = plain(run.terminal)
        lines_fit(shown, width)
        for token in expected:
            assert token in shown, (args, token, shown)


def test_a_table_too_narrow_for_its_tokens_becomes_one_block_per_row(shop):
    run = in_terminal(["license", "list"], columns=30)
    key = shop("license", "list", "--json").json()[0]["key"]
    shown = plain(run.terminal)
    assert run.code == 0 and key in shown.splitlines()[0], shown  # the key on its own line, whole
    assert re.search(r"customer\s+zoe", shown), shown
    lines_fit(shown, 36)


def test_times_in_tables_to_the_second_and_in_json_in_full(shop):
    run = in_terminal(["log", "--limit", "3"], columns=120)
    assert not re.search(r"\d\d:\d\d:\d\d\.\d", plain(run.terminal)), run.terminal
    fields = in_terminal(["customer", "show", "acme-inc"], columns=120).terminal
    assert not re.search(r"\d\d:\d\d:\d\d\.\d", plain(fields)), fields
    assert "." in shop("customer", "show", "acme-inc", "--json").json()["created_at"]


@pytest.fixture
def crowd(cli, tmp_path):
    """120 customers (one import)."""
    rows = tmp_path / "crowd.csv"
    rows.write_text("name,email\n" + "".join(f"Person {i:03d},p{i}@example.com\n" for i in range(120)))
    assert cli("customer", "import", str(rows)).exit_code == 0
    return [f"person-{i:03d}" for i in range(120)]


def _listed(text: str, names: list[str]) -> list[str]:
    return [name for name in names if re.search(rf"^{name}\b", plain(text), re.M)]


@pytest.mark.parametrize("width", WIDTHS)
def test_a_long_list_on_a_terminal_shows_50_rows_and_a_footer(crowd, width):
    run = in_terminal(["customer", "list"], columns=width)
    assert run.code == 0
    assert _listed(run.terminal, crowd) == crowd[:50]
    assert "50 of 120 - --limit N or --all" in run.terminal
    every = in_terminal(["customer", "list", "--all"], columns=width)
    assert _listed(every.terminal, crowd) == crowd and " of 120" not in every.terminal
    some = in_terminal(["customer", "list", "--limit", "70"], columns=width)
    assert _listed(some.terminal, crowd) == crowd[:70] and " of 120" not in some.terminal


@pytest.mark.parametrize("noun", ["sub", "license"])
def test_subscription_and_license_lists_are_cut_to_50_on_a_terminal_too(cli, tg, noun):
    cli("catalog", "import", str(SAMPLE))
    for i in range(60):
        tg.add_customer(f"Buyer {i:02d}", identifier=f"buyer-{i:02d}")
        tg.add_subscription(f"buyer-{i:02d}", "markdown-studio-2", currency="USD")  # issues a license key
    buyers = [f"buyer-{i:02d}" for i in range(60)]

    def listed(text: str) -> list[str]:
        return [b for b in buyers if re.search(rf"\b{b}\b", plain(text))]

    run = in_terminal([noun, "list"], columns=120)
    assert run.code == 0 and listed(run.terminal) == buyers[:50], run.terminal
    assert "50 of 60 - --limit N or --all" in run.terminal
    assert listed(in_terminal([noun, "list", "--all"], columns=120).terminal) == buyers
    assert listed(in_terminal([noun, "list", "--limit", "55"], columns=120).terminal) == buyers[:55]
    assert listed(piped([noun, "list"]).stdout) == buyers  # piped: every row
    assert piped([noun, "list", "--json", "--limit", "3"]).stdout.count('"customer"') == 3


def test_the_log_shows_its_newest_50_entries_on_a_terminal_and_every_one_piped(tg):
    buyers = [f"buyer-{i:02d}" for i in range(60)]
    for buyer in buyers:
        tg.add_customer(buyer.title(), identifier=buyer)  # one journal entry each, oldest first

    def listed(text: str) -> list[str]:
        return [b for b in buyers if re.search(rf"\b{b}\b", plain(text))]

    run = in_terminal(["log"], columns=80)
    assert run.code == 0 and listed(run.terminal) == buyers[10:], run.terminal  # the newest 50
    assert "50 of 60 - --limit N or --all" in run.terminal
    assert listed(in_terminal(["log", "--all"], columns=80).terminal) == buyers
    some = in_terminal(["log", "--limit", "55", "--action", "customer"], columns=80).terminal
    assert listed(some) == buyers[5:] and " of 60" not in some
    assert listed(piped(["log"]).stdout) == buyers  # piped: every entry, no footer
    assert " of 60" not in piped(["log"]).stdout
    assert piped(["log", "--json", "--limit", "3"]).stdout.count('"action"') == 3
    assert len(in_terminal(["log", "--csv"]).terminal.splitlines()) == 61  # --csv on a terminal: complete


def test_every_customers_overrides_are_cut_to_50_on_a_terminal_too(cli, tg):
    cli("catalog", "import", str(SAMPLE))
    buyers = [f"buyer-{i:02d}" for i in range(60)]
    for buyer in buyers:
        tg.add_customer(buyer.title(), identifier=buyer)
        tg.set_override(buyer, "api-calls", "500")

    def listed(text: str) -> list[str]:
        return [b for b in buyers if re.search(rf"^{b}\b", plain(text), re.M)]

    run = in_terminal(["override", "list"], columns=80)
    assert run.code == 0 and listed(run.terminal) == buyers[:50], run.terminal
    assert "50 of 60 - --limit N or --all" in run.terminal
    assert listed(in_terminal(["override", "list", "--all"], columns=80).terminal) == buyers
    assert listed(piped(["override", "list"]).stdout) == buyers
    assert piped(["override", "list", "--json", "--limit", "3"]).stdout.count('"feature"') == 3


def test_piped_json_and_csv_lists_are_complete(crowd):
    listed = piped(["customer", "list"])
    assert _listed(listed.stdout, crowd) == crowd and "of 120" not in listed.stdout
    assert piped(["customer", "list", "--json"]).stdout.count('"identifier"') == 120
    assert len(piped(["customer", "list", "--csv"]).stdout.splitlines()) == 121
    # on a terminal too: only the table is cut
    assert in_terminal(["customer", "list", "--csv"]).terminal.count("@example.com") == 120


def test_long_output_goes_through_the_pager(crowd, tmp_path):
    seen = tmp_path / "paged.txt"
    run = in_terminal(["customer", "list"], lines=24, env={"PAGER": f"tee {seen}"})
    assert run.code == 0, run.terminal
    assert seen.exists(), run.terminal
    paged = seen.read_text()
    assert _listed(paged, crowd) == crowd[:50] and "50 of 120" in paged
    # PAGER=cat and an empty PAGER: straight to the terminal; piped: never the pager
    for pager in ("cat", ""):
        seen.unlink(missing_ok=True)
        direct = in_terminal(["customer", "list"], lines=24, env={"PAGER": pager})
        assert _listed(direct.terminal, crowd) == crowd[:50] and not seen.exists()
    assert _listed(piped(["customer", "list"], env={"PAGER": f"tee {seen}"}).stdout, crowd) == crowd
    assert not seen.exists()
    # output shorter than the terminal is printed, not paged
    in_terminal(["customer", "list", "--limit", "5"], lines=24, env={"PAGER": f"tee {seen}"})
    assert not seen.exists()


def test_no_color_dumb_terminal_and_no_color_flag_print_exactly_what_a_pipe_gets(shop, crowd):
    for args in (["customer", "list"], ["customer", "show", "acme-inc"],
                 ["invoice", "preview", "globex-corporation", "--period", "2026-10"]):
        expected = piped(args)  # one shop and one piped run for the three ways (real processes are slow)
        assert expected.returncode == 0, args
        for how, env, flag in (("NO_COLOR", {"NO_COLOR": ""}, []), ("TERM=dumb", {"TERM": "dumb"}, []),
                               ("--no-color", {}, ["--no-color"])):
            run = in_terminal([*flag, *args], columns=64, stderr_piped=True, env=env)
            assert run.code == 0, (how, args)
            assert run.terminal == expected.stdout, (how, args)


def test_progress_counts_the_rows_of_a_usage_file(shop, tmp_path):
    events = tmp_path / "events.csv"
    events.write_text("customer,feature,quantity,timestamp,id\n" + "".join(
        f"acme-inc,api-calls,1,2026-11-01T00:{i // 60 % 60:02d}:{i % 60:02d}Z,ev-{i}\n" for i in range(3000)))
    run = in_terminal(["usage", "report", "--file", str(events)], columns=120, stdout_piped=True)
    assert run.code == 0, run.terminal
    assert re.search(r"\b\d+ of 3000\b", plain(run.terminal)), run.terminal  # done of total, on stderr
    assert "Inserted 3000 event(s)" in run.stdout
    quiet = piped(["usage", "report", "--file", str(events)])
    assert quiet.stderr == "" and "3000 duplicate(s)" in quiet.stdout  # off a terminal: no bar


def test_progress_counts_the_rows_of_a_customer_import(cli, tmp_path):
    rows = tmp_path / "people.csv"
    rows.write_text("name\n" + "".join(f"Someone {i}\n" for i in range(500)))
    run = in_terminal(["customer", "import", str(rows)], columns=120, stdout_piped=True)
    assert run.code == 0, run.terminal
    assert re.search(r"\b\d+ of 500\b", plain(run.terminal)), run.terminal


@pytest.mark.parametrize("width", WIDTHS)
def test_a_message_on_a_terminal_wraps_between_words_and_keeps_a_quoted_command_whole(shop, db_path, width):
    shown = in_terminal(["customer", "show", "acm"], columns=width, env={"TOLLGATE_DB": str(db_path)})
    assert shown.code != 0
    text = plain(shown.terminal)
    lines_fit(text, width)
    assert any("`tollgate customer list --all --search ...`" in line for line in text.splitlines()), text
    assert " ".join(text.split()) == " ".join(piped(["customer", "show", "acm"],
                                                     env={"TOLLGATE_DB": str(db_path)}).stderr.split())


@pytest.mark.parametrize("width", WIDTHS)
def test_numbers_in_a_terminal_table_are_right_aligned_under_their_header(shop, width):
    run = in_terminal(["usage", "show", "globex-corporation", "--feature", "ai-tokens", "--by", "month",
                       "--from", "2026-09-01", "--to", "2026-10-31"], columns=width)
    shown = plain(run.terminal).splitlines()
    assert run.code == 0, shown
    header = next(line for line in shown if "quantity" in line)
    rows = {line[:7]: line for line in shown if re.match(r"2026-(09|10) ", line)}
    right_edge = header.index("quantity") + len("quantity")
    assert rows["2026-09"].index(" 0 ") + 2 == right_edge, shown  # 0 ends where the header ends
    assert rows["2026-10"].index("71,500,000") + len("71,500,000") == right_edge, shown


@pytest.mark.parametrize("width", WIDTHS)
def test_the_usage_summary_in_blocks_groups_its_numbers_as_the_table_does(shop, width):
    shop("usage", "report", "globex-corporation", "ai-tokens", "1000000000000")  # 2,000,000% of 50,000,000
    args = ["usage", "show", "globex-corporation"]
    assert "1,000,000,000,000" in piped(args).stdout and "2,000,000.0%" in piped(args).stdout  # the table
    run = in_terminal(args, columns=width)
    shown = plain(run.terminal)
    assert run.code == 0, shown
    assert "ai-tokens  " in shown and "total 1,000,000,000,000" in shown, shown  # the blocks a terminal gets
    assert "2,000,000.0%" in shown, shown
    lines_fit(shown, width)
    lines = shown.splitlines()
    start = next(i for i, line in enumerate(lines) if line.startswith("ai-tokens "))
    figures = [line for line in lines[start:] if not line.startswith(("ai-tokens ", "image-generations "))]
    assert figures and all(line.startswith("  ") for line in figures if line), shown  # wrapped, still indented


@pytest.mark.parametrize("width", WIDTHS)
def test_a_long_field_value_wraps_under_itself_after_its_commas(shop, width):
    run = in_terminal(["plan", "show", "pro"], columns=width)
    shown = plain(run.terminal)
    assert run.code == 0, shown
    lines_fit(shown, width)
    lines = shown.splitlines()
    start = next(i for i, line in enumerate(lines) if line.startswith("prices "))
    value_column = lines[start].index("45.00")
    prices = [lines[start][value_column:]] + [line[value_column:] for line in lines[start + 1:]
                                              if line[:value_column].strip() == "" and line.strip()]
    assert len(prices) > 1, shown  # it wrapped, under the value column
    for price in ("45.00 EUR / month", "49.00 USD / month", "450.00 EUR / year", "490.00 USD / year"):
        assert any(price in line for line in prices), (price, shown)  # each price whole on one line


@pytest.mark.parametrize("width", WIDTHS)
def test_a_wrapped_detail_line_of_a_table_keeps_its_indentation(shop, width):
    run = in_terminal(["invoice", "preview", "globex-corporation", "--period", "2026-10"], columns=width)
    shown = plain(run.terminal)
    assert run.code == 0, shown
    detail = [line for line in shown.splitlines() if "× 0.0000012" in line or "0.0000012" == line.strip()]
    assert detail and all(line.startswith("    ") for line in detail), shown


def test_a_table_title_wraps_to_the_terminal_not_to_the_table(shop):
    run = in_terminal(["usage", "show", "globex-corporation", "--feature", "ai-tokens", "--by", "month",
                       "--from", "2026-08-01", "--to", "2026-11-30"], columns=80)
    lines = plain(run.terminal).splitlines()
    rule = next(line for line in lines if line.startswith("─"))
    assert len(lines[0]) > len(rule.rstrip()), lines  # the title is not folded to the table's width
    lines_fit("\n".join(lines), 80)


def test_a_customers_own_profile_has_no_customer_column(shop):
    run = in_terminal(["customer", "show", "zoe"], columns=80)
    lines = plain(run.terminal).splitlines()
    assert run.code == 0, lines
    for section in ("Subscriptions", "License keys"):
        header = lines[lines.index(section) + 1]
        assert header.split()[0] in ("id", "key") and "customer" not in header.split(), (section, lines)
    assert "customer" in piped(["sub", "list"]).stdout.splitlines()[0].split()  # the lists keep it


def test_a_list_item_that_fits_is_kept_whole_with_its_comma(shop):
    # enterprise's prices: '11,000.00 EUR / year, 12,000.00 USD / year'. At 34 columns the value
    # column is 21 wide: the first price and its comma fit it, whole; at 33 (20 wide) they do not,
    # and the line must still fit the terminal (it ran a column over: the comma was not counted)
    for width in (34, 33):
        run = in_terminal(["plan", "show", "enterprise"], columns=width)
        shown = plain(run.terminal)
        assert run.code == 0, shown
        profile = shown.split("\n\n")[0]  # the fields, before the tables
        lines_fit(profile, width)
        assert any(line.endswith("12,000.00 USD / year") for line in profile.splitlines()), shown
        if width == 34:
            assert any(line.endswith("11,000.00 EUR / year,") for line in profile.splitlines()), shown


def test_wrap_words_counts_an_items_comma_and_never_indents_a_word_past_the_width():
    from tollgate.cli.output import wrap_words

    lines = wrap_words("11,000.00 EUR / year, 12,000.00 USD / year", 20, items=True)
    assert all(len(line) <= 20 for line in lines), lines
    assert " ".join(lines) == "11,000.00 EUR / year, 12,000.00 USD / year"
    # an indented detail line in a column 13 wide: each word fits, but not after the 4-space indent
    text = "    tier 0 – 500,000,000: 21,500,000 × 0.0000012"
    for items in (False, True):
        lines = wrap_words(text, 13, items=items)
        assert all(len(line) <= 13 for line in lines), lines
        assert " ".join(lines).split() == text.split(), lines  # every word whole, none lost
        assert lines[0].startswith("    ") and all(line.startswith(" ") for line in lines[1:]), lines
