"""Shell-completion callbacks: identifiers from the database, and the fixed vocabularies.

Every TAB press runs the program, so this module imports only the standard library (os, sqlite3)
and reads the database with sqlite3 through a read-only URI. A completer never creates a database
file, never writes, never prints, and never raises: any error (no database yet, a PostgreSQL URL,
a file that is not a tollgate database, a lock) simply yields no candidates.

Use them as Typer's `autocompletion=`:

    from tollgate.cli.complete import complete_customer
    customer: Annotated[str, typer.Argument(help="...", autocompletion=complete_customer)]

Each completer takes `(ctx, args, incomplete)` (matched by name, so this module needs no typer
import) and returns `(value, help)` pairs. `ctx` gives the values already on the command line:
`--db` (to find the database, exactly like `db.resolve_location`) and, where it narrows the answer,
a customer or plan typed earlier (`license show <TAB>` after `--customer acme-inc`, `sub add acme-inc
pro --currency <TAB>`).
"""

from __future__ import annotations

import os
import sqlite3

LIMIT = 500
"""At most this many identifier candidates per TAB (plus the first and last match, see `_ranked`)."""

_TOP = "\U0010ffff"  # sorts after every character: `prefix <= x < prefix + _TOP` is "x starts with prefix"
_LIVE = ("trialing", "active", "past_due")

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
ROW_FORMATS = (("csv", "comma-separated values"), ("jsonl", "JSON lines"), ("toml", "TOML"))
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
    while ctx is not None:
        value = (getattr(ctx, "params", None) or {}).get(name)
        if value not in (None, "", (), []):
            return value
        ctx = getattr(ctx, "parent", None)
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
    """The SQLite file behind a location (mirror of `db.sqlite_path`), or None for a server URL."""
    if location.startswith("sqlite:///"):
        return location[len("sqlite:///") :]
    if "://" in location:
        return None  # PostgreSQL and friends: no identifiers (completion stays instant and offline)
    return os.path.expanduser(location)


def _connect(ctx, args) -> sqlite3.Connection | None:
    """A read-only connection, or None when there is no SQLite database file to read.

    `mode=ro` never creates the file. On a WAL database, a read-only connection would still create
    the -wal/-shm side files when they are absent (and could not remove them); when no -wal file
    exists, the database file holds every committed change, so it is opened `immutable=1`, which
    touches nothing at all.
    """
    path = database_file(database_location(ctx, args))
    if not path or not os.path.isfile(path):
        return None
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
    text = " ".join(str(p) for p in parts if p not in (None, ""))
    text = "".join(ch if ch.isprintable() else " " for ch in text).strip()
    return text if len(text) <= 70 else text[:69] + "…"


def _ranked(ctx, args, incomplete: str, *, table: str, key: str, columns: str, first: str = "",
            where: str = "", params: tuple = (), joins: str = "") -> list[tuple]:
    """Rows of `table` whose `key` starts with `incomplete`, best first (`first` is a sort key).

    Prefix matching is a range on the indexed key, so it stays fast on 100,000 rows. When more than
    LIMIT rows match, the lexicographically first and last matches are always included, so the
    common prefix a shell inserts is the common prefix of all matches, not just of those shown.
    """
    incomplete = incomplete or ""
    cond = f"{table}.{key} >= ? AND {table}.{key} < ?" + (f" AND ({where})" if where else "")
    bounds = (incomplete, incomplete + _TOP) + tuple(params)
    base = f"FROM {table} {joins} WHERE {cond}"
    try:
        conn = _connect(ctx, args)
        if conn is None:
            return []
        try:
            rows = conn.execute(
                f"SELECT {table}.{key}, {columns} {base} ORDER BY {first + ', ' if first else ''}{table}.{key} LIMIT ?",
                bounds + (LIMIT + 1,),
            ).fetchall()
            if len(rows) > LIMIT:
                rows = rows[:LIMIT]
                have = {row[0] for row in rows}
                for order in ("ASC", "DESC"):
                    edge = conn.execute(
                        f"SELECT {table}.{key}, {columns} {base} ORDER BY {table}.{key} {order} LIMIT 1", bounds
                    ).fetchone()
                    if edge is not None and edge[0] not in have:
                        rows.append(edge)
                        have.add(edge[0])
            return rows
        finally:
            conn.close()
    except Exception:
        return []


def _fixed(choices, incomplete: str) -> list[tuple[str, str]]:
    incomplete = incomplete or ""
    return [(value, help_) for value, help_ in choices if value.startswith(incomplete)]


def _customer_filter(ctx, column: str) -> tuple[str, tuple]:
    """A WHERE fragment limiting rows to the customer typed earlier on the line (if any)."""
    customer = _given(ctx, "customer")
    if not customer or not isinstance(customer, str):
        return "", ()
    return f"{column} = (SELECT id FROM customer WHERE identifier = ?)", (customer,)


# -- identifiers ------------------------------------------------------------------------------------


def complete_customer(ctx, args, incomplete):
    """Customer identifiers, active ones first; help: the name (archived ones say so)."""
    rows = _ranked(ctx, args, incomplete, table="customer", key="identifier", columns="name, status",
                   first="status <> 'active'")
    return [(ident, _label(name, "(archived)" if status != "active" else "")) for ident, name, status in rows]


def complete_active_customer(ctx, args, incomplete):
    """Active customers only (for commands that refuse archived ones: new subscriptions, usage)."""
    rows = _ranked(ctx, args, incomplete, table="customer", key="identifier", columns="name",
                   where="status = 'active'")
    return [(ident, _label(name)) for ident, name in rows]


def complete_product(ctx, args, incomplete):
    """Product identifiers, active ones first."""
    rows = _ranked(ctx, args, incomplete, table="product", key="identifier", columns="name, status",
                   first="status <> 'active'")
    return [(ident, _label(name, "(archived)" if status != "active" else "")) for ident, name, status in rows]


def complete_plan(ctx, args, incomplete):
    """Plan identifiers, active ones first; help: the plan's name and product."""
    rows = _ranked(ctx, args, incomplete, table="plan", key="identifier",
                   columns="plan.name, plan.status, product.identifier",
                   joins="LEFT JOIN product ON product.id = plan.product_id", first="plan.status <> 'active'")
    return [
        (ident, _label(name, f"({product})" if product else "", "(archived)" if status != "active" else ""))
        for ident, name, status, product in rows
    ]


def complete_feature(ctx, args, incomplete):
    """Feature identifiers (every type); help: name and type."""
    rows = _ranked(ctx, args, incomplete, table="feature", key="identifier", columns="name, type, status",
                   first="status <> 'active'")
    return [
        (ident, _label(name, f"({type_})", "(archived)" if status != "active" else ""))
        for ident, name, type_, status in rows
    ]


def complete_metered_feature(ctx, args, incomplete):
    """Metered feature identifiers only (usage report/show, --hard, --reset)."""
    rows = _ranked(ctx, args, incomplete, table="feature", key="identifier", columns="name, unit, status",
                   where="type = 'metered'", first="status <> 'active'")
    return [
        (ident, _label(name, f"(per {unit})" if unit else "", "(archived)" if status != "active" else ""))
        for ident, name, unit, status in rows
    ]


def complete_subscription(ctx, args, incomplete):
    """Subscription ids (sub_...), live ones first; only the customer's when one was typed earlier."""
    where, params = _customer_filter(ctx, "subscription.customer_id")
    live = ", ".join(f"'{s}'" for s in _LIVE)
    rows = _ranked(ctx, args, incomplete, table="subscription", key="public_id",
                   columns="customer.identifier, plan.identifier, subscription.status",
                   joins="LEFT JOIN customer ON customer.id = subscription.customer_id "
                         "LEFT JOIN plan ON plan.id = subscription.plan_id",
                   where=where, params=params, first=f"subscription.status NOT IN ({live})")
    return [(pid, _label(customer, "on", plan, f"({status})")) for pid, customer, plan, status in rows]


def complete_license(ctx, args, incomplete):
    """License keys, active ones first; only the customer's when one was typed earlier."""
    where, params = _customer_filter(ctx, "license.customer_id")
    rows = _ranked(ctx, args, incomplete, table="license", key="key",
                   columns="customer.identifier, plan.identifier, license.status",
                   joins="LEFT JOIN customer ON customer.id = license.customer_id "
                         "LEFT JOIN plan ON plan.id = license.plan_id",
                   where=where, params=params, first="license.status <> 'active'")
    return [(key, _label(customer, plan, f"({status})")) for key, customer, plan, status in rows]


def complete_download(ctx, args, incomplete):
    """Download ids (dl_...); for a customer typed earlier, those of the plans they subscribe to."""
    customer = _given(ctx, "customer")
    where, params = "", ()
    if isinstance(customer, str) and customer:
        live = ", ".join(f"'{s}'" for s in _LIVE)
        where = (
            "plan_download.plan_id IN (SELECT subscription.plan_id FROM subscription JOIN customer "
            f"ON customer.id = subscription.customer_id WHERE customer.identifier = ? AND subscription.status IN ({live}))"
        )
        params = (customer,)
    rows = _ranked(ctx, args, incomplete, table="plan_download", key="public_id",
                   columns="plan_download.name, plan.identifier",
                   joins="LEFT JOIN plan ON plan.id = plan_download.plan_id", where=where, params=params)
    return [(pid, _label(name, f"({plan})" if plan else "")) for pid, name, plan in rows]


# -- fixed vocabularies -----------------------------------------------------------------------------


def _plan_prices(ctx, args, column: str) -> list[str]:
    """The intervals or currencies the plan typed earlier on the line is priced in ([] if none)."""
    plan = _given(ctx, "plan")
    if not isinstance(plan, str) or not plan:
        return []
    rows = _rows(
        ctx, args,
        f"SELECT DISTINCT {column} FROM plan_price JOIN plan ON plan.id = plan_price.plan_id "
        f"WHERE plan.identifier = ? ORDER BY {column}",
        (plan,),
    )
    return [row[0] for row in rows if row[0]]


def complete_interval(ctx, args, incomplete):
    """Billing intervals; after a plan on the line (sub add CUSTOMER PLAN --interval), the plan's own."""
    known = dict(INTERVALS)
    priced = _plan_prices(ctx, args, "interval")
    if priced:
        return _fixed([(value, known.get(value, "") + " (priced)") for value in priced], incomplete)
    return _fixed(INTERVALS, incomplete)


def _iso_currencies() -> list[str]:
    try:
        from tollgate.money import CURRENCY_EXPONENTS  # standard library only (decimal, re)

        return sorted(CURRENCY_EXPONENTS)
    except Exception:
        return sorted(COMMON_CURRENCIES)


def complete_currency(ctx, args, incomplete):
    """ISO 4217 codes: the plan's own currencies after a plan on the line; otherwise the currencies
    already used in this database first, then the rest."""
    priced = _plan_prices(ctx, args, "currency")
    if priced:
        return _fixed([(code, "priced in this plan") for code in priced], incomplete)
    used = [row[0] for row in _rows(ctx, args, "SELECT DISTINCT currency FROM plan_price ORDER BY currency") if row[0]]
    out = [(code, "used in this catalog") for code in used]
    out += [(code, "") for code in _iso_currencies() if code not in used]
    return _fixed(out, incomplete)


def complete_feature_type(ctx, args, incomplete):
    return _fixed(FEATURE_TYPES, incomplete)


def complete_reset(ctx, args, incomplete):
    return _fixed(RESETS, incomplete)


def complete_subscription_status(ctx, args, incomplete):
    return _fixed(SUBSCRIPTION_STATUSES, incomplete)


def complete_usage_period(ctx, args, incomplete):
    return _fixed(USAGE_PERIODS, incomplete)


def complete_row_format(ctx, args, incomplete):
    return _fixed(ROW_FORMATS, incomplete)


def complete_price_model(ctx, args, incomplete):
    return _fixed(PRICE_MODELS, incomplete)


__all__ = [
    "complete_active_customer",
    "complete_currency",
    "complete_customer",
    "complete_download",
    "complete_feature",
    "complete_feature_type",
    "complete_interval",
    "complete_license",
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
