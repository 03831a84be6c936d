"""Bad input, generated: every parser and every kind of command-line value, through the real CLI
(in-process, CliRunner). The property, for every example:

- the exit code is a documented one, {0, 1, 2, 3}: never 70 (an internal error), never an uncaught
  exception, never a traceback on stderr;
- a refused command (any exit but 0) leaves the database byte-identical.

The parsers: catalog TOML (binary, invalid UTF-8, nesting thousands deep, integers >= 2**63, floats
where money is expected, TOML dates where numbers are expected, and mutations of a valid catalog),
customer import CSV / JSON lines / TOML, and command-line dates, quantities, identifiers, emails,
URLs and free text. Each test runs TOLLGATE_FUZZ_EXAMPLES examples (default 1000; CI runs the
default). The database lives on /dev/shm when there is one (fsync is free there; the property does
not depend on it).
"""

from __future__ import annotations

import hashlib
import json
import os
import tempfile
from contextlib import contextmanager
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

pytestmark = [pytest.mark.slow, pytest.mark.sqlite_only("compares the database file byte for byte")]  # CI: 1,000 examples

EXAMPLES = int(os.environ.get("TOLLGATE_FUZZ_EXAMPLES", "1000"))
DOCUMENTED = {0, 1, 2, 3}
FUZZ = settings(max_examples=EXAMPLES, deadline=None, derandomize=False,
                suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large,
                                       HealthCheck.filter_too_much, HealthCheck.large_base_example])

SEED_CATALOG = """\
version = 1

[products.app]
name = "App"

[features.calls]
name = "API calls"
type = "metered"
unit = "call"

[features.sso]
name = "SSO"
type = "boolean"

[features.seats]
name = "Seats"
type = "config"

[features.region]
name = "Region"
type = "config"

[plans.basic]
product = "app"
name = "Basic"
trial_days = 14
prices = [ { interval = "month", currency = "USD", amount = "10.00" } ]

[plans.basic.entitlements]
calls = { limit = 1000, reset = "month", hard = true, alerts = [75, 90] }
sso = true
seats = 5
region = "eu"

[[plans.basic.usage_charges]]
feature = "calls"
currency = "USD"
model = "tiered"
tiers = [ { up_to = 1000, unit_price = "0.10" }, { unit_price = "0.01" } ]

[plans.basic.license]
activation_limit = 3
expires_after = "1y"

[[plans.basic.links]]
name = "Docs"
url = "https://example.com/docs"
"""


class Harness:
    """Runs `tollgate --db DB ARGS` in-process and checks the property."""

    def __init__(self, folder: Path) -> None:
        from typer.testing import CliRunner

        self.folder = folder
        self.db = folder / "fuzz.db"
        self.template: bytes | None = None
        self.runner = CliRunner()
        self.files = folder / "files"
        self.files.mkdir()

    def keep_as_template(self) -> None:
        """From now on, a command that changed the database is followed by a return to this state,
        so that every example starts from the same small database."""
        self.close()
        self.template = self.db.read_bytes()

    @staticmethod
    def close() -> None:
        from tollgate.cli import context

        if context.state.handle is not None:
            context.state.handle.close()
            context.state.handle = None

    @contextmanager
    def steps(self):
        """Several commands on one database (no return to the template between them; after them, yes)."""
        template, self.template = self.template, None
        try:
            yield
        finally:
            self.template = template
            self.restore()

    def restore(self) -> None:
        self.close()
        for suffix in ("-wal", "-shm"):
            Path(f"{self.db}{suffix}").unlink(missing_ok=True)
        self.db.write_bytes(self.template)

    def state(self) -> bytes:
        """The database's bytes: the file and its WAL (a write shows in one of them; reads change neither)."""
        wal = Path(f"{self.db}-wal")
        data = self.db.read_bytes() + b"|" + (wal.read_bytes() if wal.exists() else b"")
        return hashlib.sha256(data).digest()

    def run(self, *args: str):
        from tollgate.cli import context
        from tollgate.cli.app import app

        context.state.db = None
        context.state.debug = False
        before = self.state()
        result = self.runner.invoke(app, ["--db", str(self.db), *args], catch_exceptions=True)
        shown = f"tollgate {' '.join(map(repr, args))} -> exit {result.exit_code}\nstdout: {result.stdout[:500]!r}\n" \
                f"stderr: {result.stderr[:1000]!r}"
        if result.exception is not None and not isinstance(result.exception, SystemExit):
            raise AssertionError(f"uncaught {result.exception!r}: {shown}") from result.exception
        assert result.exit_code in DOCUMENTED, shown
        assert "Traceback" not in result.stderr and "error: unexpected " not in result.stderr, shown
        if result.exit_code in (2, 3):
            assert result.stderr.startswith("error: ") or result.stderr.startswith("Usage: "), shown
        after = self.state()
        if result.exit_code != 0:
            assert after == before, f"a refused command changed the database: {shown}"
        elif after != before and self.template is not None:
            self.restore()
        return result

    def file(self, name: str, content: bytes | str) -> str:
        path = self.files / name
        path.write_bytes(content if isinstance(content, bytes) else content.encode("utf-8", "surrogatepass"))
        return str(path)


def _scratch_root() -> str | None:
    shm = Path("/dev/shm")
    return str(shm) if shm.is_dir() and os.access(shm, os.W_OK) else None


@pytest.fixture(scope="module")
def harness():
    """A database with a customer on a plan, a catalog, an override and usage: every example starts
    from it. The CLI's command tree is built once for the module (building it is most of the cost of
    a refused command), exactly as `tollgate` builds it."""
    import typer.testing

    from tollgate.cli.app import app

    built = typer.testing._get_command(app)
    patch = pytest.MonkeyPatch()
    patch.setattr(typer.testing, "_get_command", lambda given: built if given is app else typer.main.get_command(given))
    with tempfile.TemporaryDirectory(prefix="tollgate-fuzz-", dir=_scratch_root()) as tmp:
        h = Harness(Path(tmp))
        from tollgate import Tollgate

        with Tollgate(h.db) as created:
            created.customers()  # create the database
        seed = h.file("seed.toml", SEED_CATALOG)
        for args in (("catalog", "import", seed), ("customer", "add", "Acme", "--id", "acme"),
                     ("customer", "add", "Globex", "--id", "globex", "--email", "ap@globex.example"),
                     ("sub", "add", "acme", "basic"), ("override", "set", "acme", "seats", "7"),
                     ("check", "acme", "calls", "--consume", "-q", "3")):
            assert h.run(*args).exit_code == 0, args
        h.keep_as_template()
        try:
            yield h
        finally:
            h.close()
            patch.undo()


# -- strategies -----------------------------------------------------------------------------------------------

HUGE_INTS = st.sampled_from([2**63, 2**63 - 1, -(2**63) - 1, 2**64, 10**100, -(10**40), 9223372036854775808])
TOML_FLOATS = st.sampled_from(["49.0", "0.01", "1e308", "-1e-400", "nan", "inf", "-inf", "+0.0", "1_000.5"])
TOML_DATES = st.sampled_from(["1979-05-27T07:32:00Z", "1979-05-27", "07:32:00", "1979-05-27T00:32:00.999999-07:00"])
SAFE_TEXT = st.text(st.characters(blacklist_categories=("Cs",)), max_size=30)


def toml_string(text: str) -> str:
    return json.dumps(text, ensure_ascii=False)  # a JSON string is a valid TOML basic string (nearly always)


TOML_SCALARS = st.one_of(
    st.integers(-(10**6), 10**6).map(str),
    HUGE_INTS.map(str),
    TOML_FLOATS,
    TOML_DATES,
    st.booleans().map(lambda b: "true" if b else "false"),
    SAFE_TEXT.map(toml_string),
    st.sampled_from(['"unlimited"', '"month"', '"never"', '"USD"', '"JPY"', '"19.999"', '"-1.00"', '"1e3"',
                     '"NaN"', '"Infinity"', '"0x10"', '"٣"', '""', '" 10.00 "', '"1_000"']),
)
TOML_VALUES = st.recursive(
    TOML_SCALARS,
    lambda inner: st.one_of(
        st.lists(inner, max_size=4).map(lambda items: "[" + ", ".join(items) + "]"),
        st.dictionaries(st.sampled_from(["limit", "reset", "hard", "alerts", "up_to", "unit_price", "flat_price",
                                         "amount", "currency", "interval", "x"]), inner, max_size=4)
        .map(lambda d: "{ " + ", ".join(f"{k} = {v}" for k, v in d.items()) + " }"),
    ),
    max_leaves=8,
)


@st.composite
def mutated_catalogs(draw) -> bytes:
    """The seed catalog with some of its values (right of `=`) replaced by arbitrary TOML values,
    lines dropped or duplicated: the validator sees nearly valid documents."""
    lines = SEED_CATALOG.splitlines()
    for _ in range(draw(st.integers(1, 4))):
        index = draw(st.integers(0, len(lines) - 1))
        line = lines[index]
        action = draw(st.sampled_from(["value", "value", "value", "drop", "dup", "key"]))
        if action == "value" and " = " in line:
            lines[index] = line.split(" = ", 1)[0] + " = " + draw(TOML_VALUES)
        elif action == "drop":
            del lines[index]
        elif action == "dup":
            lines.insert(index, line)
        elif action == "key" and " = " in line:
            lines[index] = draw(st.sampled_from(["trail_days", "limit", "name", "type", '"weird key"', "prices"])) \
                + " = " + line.split(" = ", 1)[1]
    return ("\n".join(lines) + "\n").encode("utf-8", "surrogatepass")


def nested(depth: int, kind: str) -> bytes:
    if kind == "array":
        return b"x = " + b"[" * depth + b"]" * depth + b"\n"
    if kind == "table":
        return b"x = " + b"{a = " * depth + b"1" + b"}" * depth + b"\n"
    if kind == "dotted":
        return b".".join([b"a"] * depth) + b" = 1\n"
    return b"version = 1\n[plans.p.entitlements]\n" + b"calls = " + b"[" * depth + b"]" * depth + b"\n"


CATALOG_FILES = st.one_of(
    mutated_catalogs(),
    st.binary(max_size=400),
    st.builds(lambda good, pos, junk: good[:pos] + junk + good[pos:],
              st.just(SEED_CATALOG.encode()), st.integers(0, len(SEED_CATALOG)),
              st.sampled_from([b"\xff", b"\xfe\xff", b"\xc3", b"\xed\xa0\x80", b"\x00", b"\xef\xbb\xbf"])),
    st.builds(nested, st.sampled_from([10, 500, 1000, 5000, 20000]), st.sampled_from(["array", "table", "deep"])),
    st.builds(nested, st.sampled_from([10, 300, 1500]), st.just("dotted")),  # tomllib is quadratic in a key's parts
    st.builds(lambda value: (SEED_CATALOG.replace('amount = "10.00"', f"amount = {value}")).encode(),
              st.one_of(TOML_FLOATS, HUGE_INTS.map(str), TOML_DATES)),
    st.builds(lambda value: SEED_CATALOG.replace("limit = 1000,", f"limit = {value},").encode(),
              st.one_of(HUGE_INTS.map(str), TOML_FLOATS, TOML_DATES)),
    st.builds(lambda value: SEED_CATALOG.replace("trial_days = 14", f"trial_days = {value}").encode(),
              st.one_of(HUGE_INTS.map(str), TOML_FLOATS, TOML_DATES)),
    st.builds(lambda value: SEED_CATALOG.replace("activation_limit = 3", f"activation_limit = {value}").encode(),
              st.one_of(HUGE_INTS.map(str), TOML_FLOATS)),
    st.text(max_size=300).map(lambda t: t.encode("utf-8", "surrogatepass")),
)


@FUZZ
@given(content=CATALOG_FILES, flags=st.sampled_from([(), ("--dry-run",), ("--prune",), ("--json",)]))
def test_catalog_import_of_any_file(harness, content, flags):
    harness.run("catalog", "import", harness.file("catalog.toml", content), *flags)


CSV_CELLS = st.one_of(
    SAFE_TEXT,
    st.sampled_from(["", " ", '"', '""', "a,b", "line\nbreak", "\r", "\x00", "x" * 300, "a@b.example", "not-an-email",
                     "acme", "Acme", "ACME", "-x-", "née", "\ufeff", "=cmd()", "\u202e", "\x1b[31m"]),
)
CSV_HEADERS = st.lists(st.sampled_from(["name", "identifier", "id", "email", "Name", "EMAIL", "nom", "", "name"]),
                       min_size=0, max_size=4)


def csv_line(cells: list[str], quote: bool) -> str:
    if quote:
        return ",".join('"' + c.replace('"', '""') + '"' for c in cells)
    return ",".join(cells)


@st.composite
def csv_files(draw) -> bytes:
    header = draw(CSV_HEADERS)
    width = max(len(header), 1)
    lines = [csv_line(header, draw(st.booleans()))] if draw(st.integers(0, 9)) else []
    for _ in range(draw(st.integers(0, 6))):
        cells = draw(st.lists(CSV_CELLS, min_size=max(0, width - 1), max_size=width + 1))
        lines.append(csv_line(cells, draw(st.booleans())))
    text = draw(st.sampled_from(["\n", "\r\n", "\r"])).join(lines) + draw(st.sampled_from(["", "\n"]))
    data = text.encode("utf-8", "surrogatepass")
    if draw(st.integers(0, 9)) == 0:
        data = b"\xef\xbb\xbf" + data
    if draw(st.integers(0, 9)) == 0:
        position = draw(st.integers(0, len(data)))
        data = data[:position] + draw(st.sampled_from([b"\xff", b"\xc3", b"\x80"])) + data[position:]
    return data


JSON_VALUES = st.recursive(
    st.one_of(st.none(), st.booleans(), st.integers(), HUGE_INTS, st.floats(), SAFE_TEXT),
    lambda inner: st.one_of(st.lists(inner, max_size=3), st.dictionaries(SAFE_TEXT, inner, max_size=3)),
    max_leaves=10,
)
JSON_ROWS = st.one_of(
    st.fixed_dictionaries({"name": st.one_of(SAFE_TEXT, JSON_VALUES)},
                          optional={"identifier": st.one_of(SAFE_TEXT, JSON_VALUES),
                                    "id": st.one_of(SAFE_TEXT, JSON_VALUES),
                                    "email": st.one_of(SAFE_TEXT, JSON_VALUES),
                                    "extra": JSON_VALUES}).map(json.dumps),
    JSON_VALUES.map(json.dumps),
    st.sampled_from(['{"name": "A\\ud800"}', '{"name": "\\u0000"}', '{"name": "x", "name": "y"}', "{", "[" * 5000,
                     '{"name": NaN}', '{"name": 1e999}', "", "   ", "\ufeff{}", '{"name": "Z"} trailing']),
    SAFE_TEXT,
)


@st.composite
def jsonl_files(draw) -> bytes:
    lines = draw(st.lists(JSON_ROWS, max_size=6))
    data = "\n".join(lines).encode("utf-8", "surrogatepass")
    if draw(st.integers(0, 9)) == 0:
        position = draw(st.integers(0, len(data)))
        data = data[:position] + draw(st.sampled_from([b"\xff", b"\xc3", b"\x80"])) + data[position:]
    return data


@st.composite
def toml_customer_files(draw) -> bytes:
    if draw(st.booleans()):
        return draw(st.binary(max_size=200))
    entries = []
    for _ in range(draw(st.integers(0, 4))):
        pairs = draw(st.dictionaries(st.sampled_from(["name", "identifier", "id", "email", "x"]), TOML_VALUES, max_size=3))
        entries.append("[[customers]]\n" + "".join(f"{k} = {v}\n" for k, v in pairs.items()))
    head = draw(st.sampled_from(["", "customers = 3\n", "[customers]\n", "x = 1\n"]))
    return (head + "\n".join(entries)).encode("utf-8", "surrogatepass")


CUSTOMER_FILES = st.one_of(
    st.tuples(st.just("c.csv"), csv_files()),
    st.tuples(st.just("c.jsonl"), jsonl_files()),
    st.tuples(st.just("c.toml"), toml_customer_files()),
    st.tuples(st.sampled_from(["c.csv", "c.jsonl", "c.toml"]), st.binary(max_size=300)),
)


@FUZZ
@given(csv=csv_files(), dry_run=st.booleans())
def test_customer_import_of_any_csv(harness, csv, dry_run):
    harness.run("customer", "import", harness.file("c.csv", csv), *(("--dry-run",) if dry_run else ()))


@FUZZ
@given(jsonl=jsonl_files(), dry_run=st.booleans())
def test_customer_import_of_any_json_lines(harness, jsonl, dry_run):
    harness.run("customer", "import", harness.file("c.jsonl", jsonl), *(("--dry-run",) if dry_run else ()))


@settings(FUZZ, max_examples=max(EXAMPLES // 4, 10))
@given(content=toml_customer_files())
def test_customer_import_of_any_toml(harness, content):
    harness.run("customer", "import", harness.file("c.toml", content))


# -- usage report --file --------------------------------------------------------------------------------------

USAGE_CUSTOMERS = st.one_of(st.sampled_from(["acme", "globex", "ghost", "", " acme ", "ACME"]), SAFE_TEXT)
USAGE_FEATURES = st.one_of(st.sampled_from(["calls", "sso", "seats", "nope", "", "CALLS"]), SAFE_TEXT)
USAGE_QUANTITIES = st.one_of(
    st.integers(-5, 10**6).map(str), HUGE_INTS.map(str), st.decimals(allow_nan=True, allow_infinity=True).map(str),
    st.sampled_from(["1e308", "1E-400", "0.0000001", "NaN", "-Infinity", "٣", "1_000", "", " 5 ", "0x10", "1,5"]),
    SAFE_TEXT)
USAGE_TIMESTAMPS = st.one_of(st.just(""), st.datetimes().map(lambda d: d.isoformat() + "Z"), SAFE_TEXT,
                             st.sampled_from(["2026-02-30", "9999-12-31T23:59:59Z", "0001-01-01", "2026-11-21"]))
USAGE_KEYS = st.one_of(st.just(""), st.text(max_size=20), st.sampled_from(["k1", "k1", "k2", "x" * 500]))
USAGE_COLUMNS = ("customer", "feature", "quantity", "timestamp", "id")


@st.composite
def usage_csv_files(draw) -> bytes:
    header = list(draw(st.one_of(
        st.permutations(USAGE_COLUMNS).flatmap(lambda cols: st.integers(3, 5).map(lambda n: cols[:n])),
        st.lists(st.sampled_from([*USAGE_COLUMNS, "timestmap", "", "Customer"]), max_size=6))))
    columns = {"customer": USAGE_CUSTOMERS, "feature": USAGE_FEATURES, "quantity": USAGE_QUANTITIES,
               "timestamp": USAGE_TIMESTAMPS, "id": USAGE_KEYS}
    lines = [csv_line(header, False)]
    for _ in range(draw(st.integers(0, 6))):
        cells = [draw(columns.get(name, SAFE_TEXT)) for name in header]
        if draw(st.integers(0, 7)) == 0:
            cells = cells[:-1] if cells and draw(st.booleans()) else cells + ["extra"]
        lines.append(csv_line(cells, draw(st.booleans())))
    data = "\n".join(lines).encode("utf-8", "surrogatepass")
    if draw(st.integers(0, 9)) == 0:
        position = draw(st.integers(0, len(data)))
        data = data[:position] + draw(st.sampled_from([b"\xff", b"\x00", b"\xc3"])) + data[position:]
    return data


USAGE_JSON_ROWS = st.one_of(
    st.fixed_dictionaries({"customer": st.one_of(USAGE_CUSTOMERS, JSON_VALUES),
                           "feature": st.one_of(USAGE_FEATURES, JSON_VALUES),
                           "quantity": st.one_of(USAGE_QUANTITIES, st.integers(), HUGE_INTS, st.floats(), JSON_VALUES)},
                          optional={"timestamp": st.one_of(USAGE_TIMESTAMPS, JSON_VALUES),
                                    "id": st.one_of(USAGE_KEYS, JSON_VALUES), "extra": JSON_VALUES}).map(json.dumps),
    st.builds(lambda q: '{"customer": "acme", "feature": "calls", "quantity": %s}' % q,
              st.sampled_from(["1e999", "-0", "0.1e-999999", "1" * 400, "NaN", "Infinity", "1E+2", "1.0"])),
    JSON_VALUES.map(json.dumps),
    st.sampled_from(['{"customer": "acme\\ud800", "feature": "calls", "quantity": 1}', "{", "[" * 5000, "", "null"]),
    SAFE_TEXT,
)


@st.composite
def usage_jsonl_files(draw) -> bytes:
    data = "\n".join(draw(st.lists(USAGE_JSON_ROWS, max_size=6))).encode("utf-8", "surrogatepass")
    if draw(st.integers(0, 9)) == 0:
        position = draw(st.integers(0, len(data)))
        data = data[:position] + draw(st.sampled_from([b"\xff", b"\x00", b"\xc3"])) + data[position:]
    return data


USAGE_FLAGS = st.sampled_from([(), ("--dry-run",), ("--skip-invalid",), ("--json",), ("--skip-invalid", "--json")])


@FUZZ
@given(content=usage_csv_files(), flags=USAGE_FLAGS)
def test_usage_report_of_any_csv(harness, content, flags):
    harness.run("usage", "report", "--file", harness.file("u.csv", content), *flags)


@FUZZ
@given(content=usage_jsonl_files(), flags=USAGE_FLAGS)
def test_usage_report_of_any_json_lines(harness, content, flags):
    harness.run("usage", "report", "--file", harness.file("u.jsonl", content), *flags)


# -- command-line values --------------------------------------------------------------------------------------

ANY_TEXT = st.text(max_size=40)  # lone surrogates included: what argv holds for bytes that are not UTF-8

DATES = st.one_of(
    ANY_TEXT,
    st.dates().map(str),
    st.datetimes().map(lambda d: d.isoformat()),
    st.datetimes().map(lambda d: d.isoformat() + "Z"),
    st.sampled_from(["2026-02-30", "2026-13-01", "0000-01-01", "0001-01-01", "9999-12-31T23:59:59Z",
                     "9999-12-31T23:59:59-23:59", "0001-01-01T00:00:00+23:59", "2026-11-21T10:00:00+25:00",
                     "2026-11-21T24:00:00", "now", "today", "yesterday", "7d", "99999w", "2h", "1e9", "-1", "", " ", "２０２６-01-01", "2026-W47",
                     "2026-11", "2026-11-21 10:00", "2026-11-21t10:00z", "x" * 100, "2026-11-21\x00"]),
)
QUANTITIES = st.one_of(
    ANY_TEXT,
    st.integers().map(str),
    HUGE_INTS.map(str),
    st.floats().map(repr),
    st.decimals(allow_nan=True, allow_infinity=True).map(str),
    st.sampled_from(["0", "-0", "-1", "0.000001", "0.0000001", "1e308", "1E-400", "1e999999999", "NaN", "sNaN",
                     "-Infinity", "1_000", "0x10", "٣", "１２", " 5 ", "5.", ".5", "+5", "1/2", "10000000000000000000000",
                     "unlimited", "true", "", "99999999999999999999.999999"]),
)
IDENTIFIERS = st.one_of(
    ANY_TEXT,
    st.from_regex(r"\A[a-z0-9-]{1,70}\Z"),
    st.sampled_from(["acme", "globex", "basic", "calls", "sso", "seats", "app", "../etc", "a/b", "-a", "a-", "a--b",
                     "ACME", "acme ", "x" * 300, "", "%", "_", "acme;drop", "' OR 1=1 --", "sub_x", "ln_x", "dl_x"]),
)
EMAILS = st.one_of(
    ANY_TEXT,
    st.emails().map(str),
    st.sampled_from(["a@b", "@", "a@", "@b.c", "a@b.c" * 60, '"q"@x.example', "a@[127.0.0.1]", "a b@x.example",
                     "a@x..example", "a@-x.example", "ä@ü.example", "a@x.example\n", ""]),
)
URLS = st.one_of(
    ANY_TEXT,
    st.sampled_from(["javascript:alert(1)", "http://", "https://", "https://" + "a" * 3000 + ".example",
                     "http://[::1", "http://exa mple.com", "HTTP://EXAMPLE.COM", "file:///etc/passwd", "data:text/html,x",
                     "http://user:pass@host/", "https://example.com/\x00", "https://example.com/\u202e", "//x.example",
                     "https://example.com:99999/", "https://例え.テスト/", "ftp://x.example", ""]),
)

VALUE_COMMANDS = {
    "date": [
        ("entitlements", "acme", "--at", "{v}"),
        ("check", "acme", "calls", "--at", "{v}"),
        ("sub", "add", "globex", "basic", "--start", "{v}"),
        ("sub", "add", "globex", "basic", "--trial-end", "{v}"),
        ("sub", "list", "--at", "{v}"),
        ("override", "set", "acme", "calls", "5", "--expires", "{v}"),
        ("log", "--since", "{v}"),
        ("invoice", "preview", "acme", "--at", "{v}"),
        ("invoice", "preview", "acme", "--period", "{v}"),
        ("usage", "report", "acme", "calls", "1", "--at", "{v}"),
        ("usage", "show", "acme", "--from", "{v}"),
        ("usage", "show", "acme", "--to", "{v}", "--by", "month"),
        ("usage", "show", "acme", "--feature", "calls", "--from", "{v}", "--by", "week"),
    ],
    "quantity": [
        ("check", "acme", "calls", "-q", "{v}"),
        ("check", "acme", "calls", "-q", "{v}", "--consume"),
        ("override", "set", "acme", "calls", "{v}"),
        ("override", "set", "acme", "seats", "{v}"),
        ("override", "set", "acme", "sso", "{v}"),
        ("plan", "create", "fz", "--product", "app", "--price", "{v}", "--currency", "USD", "--interval", "month"),
        ("plan", "create", "fz", "--product", "app", "--feature", "calls={v}"),
        ("plan", "create", "fz", "--product", "app", "--trial-days", "{v}"),
        ("sub", "add", "globex", "basic", "--feature", "calls={v}"),
        ("sub", "add", "globex", "basic", "--trial-days", "{v}"),
        ("customer", "list", "--limit", "{v}"),
        ("usage", "report", "acme", "calls", "{v}"),
        ("usage", "report", "acme", "calls", "{v}", "--set"),
        ("usage", "report", "acme", "seats", "{v}"),
    ],
    "identifier": [
        ("customer", "add", "Someone", "--id", "{v}"),
        ("customer", "show", "{v}"),
        ("customer", "archive", "{v}", "--yes"),
        ("product", "create", "{v}"),
        ("feature", "create", "--name", "F", "--type", "boolean", "--id", "{v}"),
        ("plan", "create", "{v}", "--product", "app"),
        ("check", "{v}", "calls"),
        ("check", "acme", "{v}"),
        ("entitlements", "{v}"),
        ("sub", "add", "{v}", "basic"),
        ("sub", "cancel", "{v}", "--yes"),
        ("override", "set", "acme", "{v}", "1"),
        ("override", "unset", "{v}", "seats"),
        ("license", "validate", "{v}"),
        ("download", "list", "--customer", "{v}"),
        ("link", "list", "--customer", "{v}"),
        ("usage", "report", "acme", "calls", "1", "--id", "{v}"),
        ("usage", "report", "{v}", "calls", "1"),
        ("usage", "show", "{v}"),
        ("usage", "void", "{v}", "--reason", "fuzz", "--yes"),
    ],
    "email": [
        ("customer", "add", "Someone", "--email", "{v}"),
        ("customer", "edit", "globex", "--email", "{v}"),
    ],
    "url": [
        ("link", "add", "basic", "Docs", "{v}"),
    ],
    "text": [
        ("customer", "add", "{v}"),
        ("customer", "edit", "globex", "--name", "{v}"),
        ("customer", "list", "--search", "{v}"),
        ("override", "set", "acme", "region", "{v}"),
        ("override", "set", "acme", "sso", "true", "--note", "{v}"),
        ("product", "create", "--name", "{v}"),
        ("link", "add", "basic", "{v}", "https://example.com/x"),
    ],
}
VALUES = {"date": DATES, "quantity": QUANTITIES, "identifier": IDENTIFIERS, "email": EMAILS, "url": URLS,
          "text": ANY_TEXT}


@pytest.mark.parametrize("kind", list(VALUE_COMMANDS))
def test_any_command_line_value(harness, kind):
    @settings(FUZZ, max_examples=EXAMPLES if kind != "text" else max(EXAMPLES // 2, 10))  # text: no parser
    @given(template=st.sampled_from(VALUE_COMMANDS[kind]), value=VALUES[kind], as_json=st.booleans())
    def run(template, value, as_json):
        args = [part.replace("{v}", value) for part in template]
        if as_json and args[0] not in ("log",):
            args.append("--json")
        harness.run(*args)

    run()


@pytest.mark.parametrize("args", [
    ("customer", "add", "\udcff\udcfeAcme"),
    ("customer", "show", "\udcff"),
    ("customer", "list", "--search", "\udcff"),
    ("check", "acme\udcff", "calls"),
    ("override", "set", "acme", "region", "eu\udcff"),
])
def test_arguments_that_are_not_utf8_are_bad_input(harness, args):
    """Regression: bytes that are not UTF-8 in argv (kept by Python as lone surrogates) were exit 70."""
    result = harness.run(*args)
    assert result.exit_code == 2 and "not valid UTF-8" in result.stderr, result.stderr


def test_a_lone_surrogate_escape_in_json_lines_is_bad_input(harness):
    result = harness.run("customer", "import", harness.file("c.jsonl", '{"name": "A\\ud800b"}\n'))
    assert result.exit_code == 2, result.stderr


# -- what fuzzing found, kept as plain regression tests ----------------------------------------------------------


@pytest.mark.parametrize("args, code, needle", [
    (("link", "add", "basic", "Docs", "A://["), 2, "not a web address"),
    (("link", "add", "basic", "Docs", "https://[::1"), 2, "not a web address"),
    (("customer", "list", "--limit", str(2**63)), 0, None),
    (("log", "--limit", str(2**64)), 0, None),
    (("sub", "add", "globex", "basic", "--start", "9999-12-31"), 2, "after the year 9999"),
    (("usage", "show", "acme", "--to", "0001-01-01", "--by", "month"), 2, "years 1 to 9999"),
    (("usage", "show", "acme", "--to", "9999-12-31"), 2, "years 1 to 9999"),
])
def test_found_by_fuzzing(harness, args, code, needle):
    result = harness.run(*args)
    assert result.exit_code == code, result.stderr
    if needle:
        assert needle in result.stderr


def test_a_license_lasting_past_the_year_9999_never_expires(harness):
    with harness.steps():
        assert harness.run("plan", "create", "forever", "--product", "app", "--license-activations", "1",
                           "--license-expires", "9999y").exit_code == 0
        result = harness.run("sub", "add", "globex", "forever")
        assert result.exit_code == 0, result.stderr
        listed = json.loads(harness.run("license", "list", "--customer", "globex", "--json").stdout)
        assert [item["expires_at"] for item in listed] == [None]


# -- user text on a terminal: shown literally, never interpreted ---------------------------------------------------

MARKUP_PIECES = st.sampled_from(["[bold]", "[/]", "[/bold]", "[red]", "[link=x]", "[/link]", ":smile:", "\\[", "[i]",
                                 "[", "]", "x", "y", " ", "=", "#", "@", "é"])
MARKUP_TEXT = st.lists(MARKUP_PIECES, min_size=1, max_size=3).map("".join).map(str.strip).filter(bool)
"""Short (rich folds a long cell over several lines, which would hide it from a plain `in`)."""


@pytest.fixture
def on_a_terminal(monkeypatch):
    """Output drawn as for a terminal (rich tables and styles), though CliRunner captures it."""
    from tollgate.cli import output

    monkeypatch.setattr(output, "is_terminal", lambda stream=None: True)
    monkeypatch.setattr(output, "color_enabled", lambda stream=None: True)
    monkeypatch.setenv("TOLLGATE_PAGER", "")  # a pager would write to the real terminal, past CliRunner
    output._consoles.clear()
    yield
    output._consoles.clear()


@settings(FUZZ, max_examples=max(EXAMPLES // 40, 5), suppress_health_check=[
    HealthCheck.too_slow, HealthCheck.function_scoped_fixture, HealthCheck.filter_too_much])
@given(text=MARKUP_TEXT)
def test_user_text_that_looks_like_markup_is_shown_literally_on_a_terminal(harness, on_a_terminal, text):
    with harness.steps():
        created = [
            ("customer", "add", text, "--id", "marked"),
            ("product", "create", "marked-product", "--name", text),
            ("feature", "create", "--name", text, "--type", "metered", "--id", "marked-feature"),
            ("plan", "create", "marked-plan", "--product", "marked-product", "--name", text,
             "--feature", "marked-feature=10"),
            ("link", "add", "marked-plan", text, "https://example.com/x"),
            ("sub", "add", "marked", "marked-plan"),
            ("override", "set", "marked", "sso", "true", "--note", text),
        ]
        for args in created:
            assert harness.run(*args).exit_code == 0, args
        shown = [("customer", "list"), ("customer", "show", "marked"), ("product", "list"), ("feature", "list"),
                 ("plan", "list"), ("plan", "show", "marked-plan"), ("link", "list", "marked-plan"),
                 ("override", "list", "marked")]
        for args in shown:
            result = harness.run(*args)
            assert result.exit_code == 0, (args, result.stderr)
            assert text in result.stdout, (args, text, result.stdout)
        refused = harness.run("customer", "show", text)  # user text in an error message
        assert refused.exit_code == 2 and text in refused.stderr, refused.stderr


@settings(FUZZ)
@given(names=st.lists(st.text(min_size=1, max_size=40), min_size=1, max_size=4, unique=True))
def test_exported_download_files_stay_under_assets_of_their_plan(names):
    """`catalog export --with-files` writes each download as assets/<plan>/<name>: whatever the
    download's name (../../x, /etc/passwd, a dot, a NUL), it is one plain file name in that folder."""
    from tollgate import catalog, catalog_dump
    from tollgate.catalog import Download, PlanSpec

    plan = PlanSpec(identifier="pro", product="app", name="Pro",
                    downloads=tuple(Download(name=n, sha256="0" * 64, size=1) for n in names))
    written = catalog_dump.asset_names(catalog.Catalog(plans={"pro": plan}))
    folders = set()
    for (plan_id, name), relative in written.items():
        parts = Path(relative).parts
        assert parts[:2] == ("assets", "pro") and len(parts) == 3, relative
        assert parts[2] not in (".", "..") and not parts[2].startswith(".") and "\x00" not in parts[2], relative
        folders.add(relative)
    assert len(folders) == len(names)  # no two downloads share a file
