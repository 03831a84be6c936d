"""Shell-completion callbacks: identifiers from the database, and the fixed vocabularies.

Every TAB press runs the program, so this module imports only the standard library (os at import,
sqlite3 once there is a database file to read) and reads the database through a read-only URI. A
completer never creates a database file, never writes, never prints, and never raises: any error
(no database yet, a PostgreSQL URL, a file that is not a tollgate database, a lock) simply yields
no candidates.

Use them as Typer's `autocompletion=`:

    from tollgate.cli.complete import complete_customer
    customer: Annotated[str, typer.Argument(help="...", autocompletion=complete_customer)]

Each completer takes `(ctx, args, incomplete)` (matched by name, so this module needs no typer
import) and returns `(value, help)` pairs. `ctx` gives the values already on the command line:
`--db` (to find the database, exactly like `location.resolve_location`) and, where it narrows the answer,
a customer or plan typed earlier (`license show <TAB>` after `--customer acme-inc`, `sub add acme-inc
pro --currency <TAB>`).
"""

from __future__ import annotations

import os
from typing import NamedTuple

LIMIT = 500
"""At most this many identifier candidates per TAB (plus the first and last match, see `_ranked`)."""

_TOP = "\U0010ffff"  # sorts after every character: `prefix <= x < prefix + _TOP` is "x starts with prefix"

INTERVALS = (
    ("month", "every month"),
    ("year", "every year"),
    ("28d", "every 28 days"),
    ("quarter", "every three months"),
    ("half-year", "every six months"),
    ("once", "a one-time purchase"),
)
FEATURE_TYPES = (
    ("boolean", "on or off"),
    ("metered", "a consumed quantity (API calls, tokens, GB)"),
    ("config", "a numeric limit or a setting value"),
)
RESETS = (
    ("never", "the allowance never resets"),
    ("day", "every day"),
    ("week", "every week"),
    ("28d", "every 28 days"),
    ("month", "every month"),
    ("quarter", "every three months"),
    ("year", "every year"),
)
SUBSCRIPTION_STATUSES = (
    ("trialing", "in its trial"),
    ("active", "paying"),
    ("past_due", "a payment is late; access continues"),
    ("canceled", "canceled"),
    ("expired", "ended"),
)
USAGE_PERIODS = (("day", "one row per day"), ("week", "one row per week"), ("month", "one row per month"))
ROW_FORMATS = (("csv", "comma-separated values"), ("json", "JSON: lines or an array"), ("jsonl", "JSON lines"), ("toml", "TOML"))
PRICE_MODELS = (
    ("flat", "a price per unit"),
    ("package", "a price per package of units"),
    ("tiered", "graduated tiers"),
    ("volume", "the tier reached prices every unit"),
    ("stair-step", "a flat price per tier"),
)
COMMON_CURRENCIES = ("USD", "EUR", "GBP", "JPY", "CAD", "AUD", "CHF", "CNY", "INR", "SEK", "NOK", "DKK", "BRL")


# -- where the database is ---------------------------------------------------------------------------


def _given(ctx, name: str):
    """The value of parameter `name` already parsed on the command line, in this context or a parent."""
    leaf = ctx
    while ctx is not None:
        value = (getattr(ctx, "params", None) or {}).get(name)
        if value not in (None, "", (), []):
            return value
        ctx = getattr(ctx, "parent", None)
    return _positional(leaf, name)


def _positional(ctx, name: str):
    """An argument Click's parser left unassigned: when the word being completed is the value of an
    option (`sub add acme-inc pro --currency <TAB>`), the parser stops at that option before it
    assigns the positional arguments, and leaves them, in order, in `ctx.args`."""
    command = getattr(ctx, "command", None)
    words = list(getattr(ctx, "args", None) or ())
    if command is None or not words:
        return None
    arguments = [p for p in getattr(command, "params", ()) if getattr(p, "param_type_name", "") == "argument"]
    for index, param in enumerate(arguments):
        if getattr(param, "nargs", 1) != 1:
            return None  # a variadic argument: no guessing
        if param.name == name:
            return words[index] if index < len(words) and isinstance(words[index], str) else None
    return None


def _db_from_args(args) -> str | None:
    """`--db X` / `--db=X` among raw words (for callers that pass the words, not a parsed context)."""
    words = list(args or ())
    for i, word in enumerate(words):
        if word == "--db" and i + 1 < len(words):
            return words[i + 1]
        if word.startswith("--db="):
            return word[len("--db=") :]
    return None


def database_location(ctx=None, args=()) -> str:
    """Mirror of `tollgate.db.resolve_location`: --db on the line > $TOLLGATE_DB > the user data folder."""
    given = _given(ctx, "db") or _db_from_args(args)
    if given:
        return str(given)
    from_env = os.environ.get("TOLLGATE_DB")
    if from_env:
        return from_env
    from platformdirs import user_data_dir  # cheap: no I/O, a few small modules

    return os.path.join(user_data_dir("tollgate", appauthor=False), "tollgate.db")


def database_file(location: str) -> str | None:
    """The SQLite file behind a location (mirror of `location.sqlite_path`), or None for a server URL."""
    if location.startswith("sqlite:///"):
        return location[len("sqlite:///") :]
    if "://" in location:
        return None  # PostgreSQL and friends: no identifiers (completion stays instant and offline)
    return os.path.expanduser(location)


def _connect(ctx, args):
    """A read-only connection, or None when there is no SQLite database file to read.

    `mode=ro` never creates the file. On a WAL database, a read-only connection would still create
    the -wal/-shm side files when they are absent (and could not remove them); when no -wal file
    exists, the database file holds every committed change, so it is opened `immutable=1`, which
    touches nothing at all.
    """
    path = database_file(database_location(ctx, args))
    if not path or not os.path.isfile(path):
        return None
    import sqlite3  # only when there is a file to read: `--help` and command-name completion skip it

    quoted = path.replace("%", "%25").replace("?", "%3f").replace("#", "%23")
    mode = "mode=ro" if os.path.exists(path + "-wal") else "mode=ro&immutable=1"
    return sqlite3.connect(f"file:{quoted}?{mode}", uri=True, timeout=1.0)


def _rows(ctx, args, sql: str, params: tuple = ()) -> list[tuple]:
    try:
        conn = _connect(ctx, args)
        if conn is None:
            return []
        try:
            return conn.execute(sql, params).fetchall()
        finally:
            conn.close()
    except Exception:  # completion must never fail loudly
        return []


def _label(*parts) -> str:
    """Help text for one candidate: one line, no control characters, not too long."""
    text = " ".join([str(p) for p in parts if p is not None and p != ""])
    if not text.isprintable():  # rare: only then look at each character
        text = "".join(ch if ch.isprintable() else " " for ch in text)
    text = text.strip()
    return text if len(text) <= 70 else text[:69] + "…"


def _fixed(choices, incomplete: str) -> list[tuple[str, str]]:
    incomplete = incomplete or ""
    return [(value, help_) for value, help_ in choices if value.startswith(incomplete)]


def _never_raises(completer):
    """Whatever goes wrong inside a completer (a strange context, a broken file), TAB just offers
    nothing: a completion must never print a traceback into the user's shell."""
    from functools import wraps  # already imported by typer: free

    @wraps(completer)
    def safe(ctx, args, incomplete):
        try:
            return completer(ctx, args, incomplete)
        except Exception:
            return []

    return safe


# -- the queries ------------------------------------------------------------------------------------
# Every statement is fixed text with bound parameters: the user's input is never part of the SQL.
# Each kind of identifier is one row of KINDS, and its two statements (QUERIES) are put together from
# that row's fixed fragments once, at import:
#   RANKED: the rows whose key lies in [prefix, prefix + U+10FFFF) (i.e. starts with the prefix, a
#     range on the key's unique index), in key order, whose "preferred" condition (active, live,
#     enabled) equals ?, then the kind's narrowing condition (its own parameters), then LIMIT ?. Run
#     with 1, then with 0: preferred rows first. Each pass walks the index in key order and stops at
#     the limit, so it stays fast on 100,000 rows.
#   EDGES: the first and the last key in range (preferred >= ?), each with the same columns. When
#     the candidates are capped, both are always included, so the common prefix a shell inserts is
#     that of every match, not only of those shown.


class _Kind(NamedTuple):
    columns: str  # the SELECT list; the first column is the key
    source: str  # the FROM clause
    key: str
    preferred: str  # the condition of the rows offered first
    narrowing: str = ""  # an extra condition, with its own parameters (given as `filters`)


_LIVE_PLAN_OF_CUSTOMER = """plan_download.plan_id IN (
        SELECT subscription.plan_id FROM subscription JOIN customer ON customer.id = subscription.customer_id
        WHERE customer.identifier = ? AND subscription.status IN ('trialing', 'active', 'past_due'))"""
_SUB_OR_LICENSE = "customer.identifier, plan.identifier"

KINDS = {
    "customer": _Kind("identifier, name, status", "customer", "identifier", "status = 'active'"),
    "product": _Kind("identifier, name, status", "product", "identifier", "status = 'active'"),
    "plan": _Kind("plan.identifier, plan.name, plan.status, product.identifier",
                  "plan LEFT JOIN product ON product.id = plan.product_id", "plan.identifier", "plan.status = 'active'"),
    # the filter: 0 every type, 1 metered only
    "feature": _Kind("identifier, name, type, unit, status", "feature", "identifier", "status = 'active'",
                     "(type = 'metered') >= ?"),
    # subscriptions, licenses, downloads: the filter, twice, is the customer typed earlier (or NULL)
    "subscription": _Kind(
        "subscription.public_id, customer.identifier, plan.identifier, subscription.status",
        "subscription LEFT JOIN customer ON customer.id = subscription.customer_id"
        " LEFT JOIN plan ON plan.id = subscription.plan_id",
        "subscription.public_id", "subscription.status IN ('trialing', 'active', 'past_due')",
        "(? IS NULL OR customer.identifier = ?)"),
    "license": _Kind(
        "license.key, customer.identifier, plan.identifier, license.status",
        "license LEFT JOIN customer ON customer.id = license.customer_id LEFT JOIN plan ON plan.id = license.plan_id",
        "license.key", "license.status = 'active'", "(? IS NULL OR customer.identifier = ?)"),
    # downloads of the plans the customer typed earlier has a live subscription to
    "download": _Kind("plan_download.public_id, plan_download.name, plan.identifier",
                      "plan_download LEFT JOIN plan ON plan.id = plan_download.plan_id", "plan_download.public_id",
                      "plan_download.enabled <> 0", "(? IS NULL OR " + _LIVE_PLAN_OF_CUSTOMER + ")"),
    # links: those of active plans first
    "link": _Kind("plan_link.public_id, plan_link.name, plan.identifier",
                  "plan_link LEFT JOIN plan ON plan.id = plan_link.plan_id", "plan_link.public_id",
                  "plan.status = 'active'"),
}


def _statements(kind: _Kind) -> tuple[str, str]:
    """(RANKED, EDGES) of one kind, from its fixed fragments (see above)."""
    narrowing = " AND " + kind.narrowing if kind.narrowing else ""
    in_range = " WHERE " + kind.key + " >= ? AND " + kind.key + " < ? AND (" + kind.preferred + ")"
    select = "SELECT " + kind.columns + " FROM " + kind.source + in_range
    ranked = select + " = ?" + narrowing + " ORDER BY " + kind.key + " LIMIT ?"
    first = select + " >= ?" + narrowing + " ORDER BY " + kind.key + " LIMIT 1"
    last = select + " >= ?" + narrowing + " ORDER BY " + kind.key + " DESC LIMIT 1"
    return ranked, "SELECT * FROM (" + first + ") UNION ALL SELECT * FROM (" + last + ")"


QUERIES = {name: _statements(kind) for name, kind in KINDS.items()}

PLAN_INTERVALS = """
SELECT DISTINCT plan_price.interval FROM plan_price JOIN plan_version ON plan_version.id = plan_price.plan_version_id
JOIN plan ON plan.id = plan_version.plan_id WHERE plan.identifier = ?
AND plan_version.version = (SELECT max(version) FROM plan_version AS v WHERE v.plan_id = plan.id)
ORDER BY plan_price.interval"""
PLAN_CURRENCIES = """
SELECT DISTINCT plan_price.currency FROM plan_price JOIN plan_version ON plan_version.id = plan_price.plan_version_id
JOIN plan ON plan.id = plan_version.plan_id WHERE plan.identifier = ?
AND plan_version.version = (SELECT max(version) FROM plan_version AS v WHERE v.plan_id = plan.id)
ORDER BY plan_price.currency"""
USED_CURRENCIES = "SELECT DISTINCT currency FROM plan_price ORDER BY currency"


def _ranked(ctx, args, incomplete: str, kind: str, *, filters: tuple = (), preferred_only: bool = False) -> list[tuple]:
    """Rows of KINDS[kind] whose key (first column) starts with `incomplete`: preferred ones first,
    then the rest (unless `preferred_only`), at most LIMIT plus the first and last match (see above)."""
    ranked, edges = QUERIES[kind]
    low, high = incomplete or "", (incomplete or "") + _TOP
    try:
        conn = _connect(ctx, args)
        if conn is None:
            return []
        try:
            rows = conn.execute(ranked, (low, high, 1, *filters, LIMIT + 1)).fetchall()
            if not preferred_only and len(rows) <= LIMIT:
                rows += conn.execute(ranked, (low, high, 0, *filters, LIMIT + 1 - len(rows))).fetchall()
            if len(rows) > LIMIT:
                rows = rows[:LIMIT]
                have = {row[0] for row in rows}
                least = 1 if preferred_only else 0
                for edge in conn.execute(edges, (low, high, least, *filters) * 2).fetchall():
                    if edge[0] not in have:
                        rows.append(edge)
                        have.add(edge[0])
            return rows
        finally:
            conn.close()
    except Exception:  # completion must never fail loudly
        return []


def _customer_on_line(ctx) -> tuple[str | None, str | None]:
    """The customer typed earlier on the line (twice, for the `? IS NULL OR ... = ?` filters)."""
    customer = _given(ctx, "customer")
    customer = customer if isinstance(customer, str) and customer else None
    return customer, customer


def _archived(status) -> str:
    return "" if status == "active" else f"({status})"


# -- identifiers ------------------------------------------------------------------------------------


@_never_raises
def complete_customer(ctx, args, incomplete):
    """Customer identifiers, active ones first; help: the name (archived ones say so)."""
    rows = _ranked(ctx, args, incomplete, "customer")
    return [(ident, _label(name, _archived(status))) for ident, name, status in rows]


@_never_raises
def complete_active_customer(ctx, args, incomplete):
    """Active customers only (for commands that refuse archived ones: new subscriptions, usage)."""
    rows = _ranked(ctx, args, incomplete, "customer", preferred_only=True)
    return [(ident, _label(name)) for ident, name, _status in rows]


@_never_raises
def complete_product(ctx, args, incomplete):
    """Product identifiers, active ones first."""
    rows = _ranked(ctx, args, incomplete, "product")
    return [(ident, _label(name, _archived(status))) for ident, name, status in rows]


@_never_raises
def complete_plan(ctx, args, incomplete):
    """Plan identifiers, active ones first; help: the plan's name and product."""
    rows = _ranked(ctx, args, incomplete, "plan")
    return [
        (ident, _label(name, f"({product})" if product else "", _archived(status)))
        for ident, name, status, product in rows
    ]


@_never_raises
def complete_feature(ctx, args, incomplete):
    """Feature identifiers (every type); help: name and type."""
    rows = _ranked(ctx, args, incomplete, "feature", filters=(0,))
    return [
        (ident, _label(name, f"({type_})", _archived(status))) for ident, name, type_, _unit, status in rows
    ]


@_never_raises
def complete_metered_feature(ctx, args, incomplete):
    """Metered feature identifiers only (usage report/show, --hard, --reset)."""
    rows = _ranked(ctx, args, incomplete, "feature", filters=(1,))
    return [
        (ident, _label(name, f"(per {unit})" if unit else "", _archived(status)))
        for ident, name, _type, unit, status in rows
    ]


@_never_raises
def complete_subscription(ctx, args, incomplete):
    """Subscription ids (sub_...), live ones first; only the customer's when one was typed earlier."""
    rows = _ranked(ctx, args, incomplete, "subscription", filters=_customer_on_line(ctx))
    return [(pid, _label(customer, "on", plan, f"({status})")) for pid, customer, plan, status in rows]


@_never_raises
def complete_license(ctx, args, incomplete):
    """License keys, active ones first; only the customer's when one was typed earlier."""
    rows = _ranked(ctx, args, incomplete, "license", filters=_customer_on_line(ctx))
    return [(key, _label(customer, plan, f"({status})")) for key, customer, plan, status in rows]


@_never_raises
def complete_download(ctx, args, incomplete):
    """Download ids (dl_...), enabled ones first; after a customer, those of the plans they are on."""
    rows = _ranked(ctx, args, incomplete, "download", filters=_customer_on_line(ctx))
    return [(pid, _label(name, f"({plan})" if plan else "")) for pid, name, plan in rows]


@_never_raises
def complete_link(ctx, args, incomplete):
    """Link ids (ln_...), those of active plans first; help: the link's name and plan."""
    rows = _ranked(ctx, args, incomplete, "link")
    return [(pid, _label(name, f"({plan})" if plan else "")) for pid, name, plan in rows]


# -- fixed vocabularies -----------------------------------------------------------------------------


def _plan_prices(ctx, args, sql: str) -> list[str]:
    """The intervals or currencies the plan typed earlier on the line is priced in ([] if none)."""
    plan = _given(ctx, "plan")
    if not isinstance(plan, str) or not plan:
        return []
    return [row[0] for row in _rows(ctx, args, sql, (plan,)) if row[0]]


@_never_raises
def complete_interval(ctx, args, incomplete):
    """Billing intervals; after a plan on the line (sub add CUSTOMER PLAN --interval), the plan's own."""
    known = dict(INTERVALS)
    priced = _plan_prices(ctx, args, PLAN_INTERVALS)
    if priced:
        return _fixed([(value, known.get(value, "") + " (priced)") for value in priced], incomplete)
    return _fixed(INTERVALS, incomplete)


def _iso_currencies() -> list[str]:
    try:
        from tollgate.money import CURRENCY_EXPONENTS  # standard library only (decimal, re)

        return sorted(CURRENCY_EXPONENTS)
    except Exception:
        return sorted(COMMON_CURRENCIES)


@_never_raises
def complete_currency(ctx, args, incomplete):
    """ISO 4217 codes: the plan's own currencies after a plan on the line; otherwise the currencies
    already used in this database first, then the rest."""
    priced = _plan_prices(ctx, args, PLAN_CURRENCIES)
    if priced:
        return _fixed([(code, "priced in this plan") for code in priced], incomplete)
    used = [row[0] for row in _rows(ctx, args, USED_CURRENCIES) if row[0]]
    out = [(code, "used in this catalog") for code in used]
    out += [(code, "") for code in _iso_currencies() if code not in used]
    return _fixed(out, incomplete)


def _choices(values):
    """A completer for a fixed vocabulary (the value, its help)."""
    return _never_raises(lambda ctx, args, incomplete: _fixed(values, incomplete))


complete_feature_type = _choices(FEATURE_TYPES)
complete_reset = _choices(RESETS)
complete_subscription_status = _choices(SUBSCRIPTION_STATUSES)
complete_usage_period = _choices(USAGE_PERIODS)
complete_row_format = _choices(ROW_FORMATS)
complete_price_model = _choices(PRICE_MODELS)


__all__ = [
    "complete_active_customer",
    "complete_currency",
    "complete_customer",
    "complete_download",
    "complete_feature",
    "complete_feature_type",
    "complete_interval",
    "complete_license",
    "complete_link",
    "complete_metered_feature",
    "complete_plan",
    "complete_price_model",
    "complete_product",
    "complete_reset",
    "complete_row_format",
    "complete_subscription",
    "complete_subscription_status",
    "complete_usage_period",
    "database_location",
]
