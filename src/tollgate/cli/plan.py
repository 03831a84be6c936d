"""`tollgate plan ...`: create, list, show, archive, charge (usage charges), versions and migrate."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Annotated, Optional

import typer

from tollgate.cli import output
from tollgate.cli.complete import complete_currency, complete_customer, complete_feature, complete_interval, complete_metered_feature, complete_plan, complete_price_model, complete_product
from tollgate.cli.context import Csv, Json, Yes, confirm_or_refuse, tollgate
from tollgate.cli.grid import DATE, ID, QUANTITY, TEXT, Col
from tollgate.cli.help import Typer
from tollgate.texts import grants_text, number_text

if TYPE_CHECKING:
    from tollgate.catalog import Price
    from tollgate.plan_views import PlanView
    from tollgate.rating import UsageCharge

app = Typer(help="Plans: how a product is packaged and priced, and what each grants.\n\nExample: tollgate plan create pro --product ai-studio --price 49.00 --currency USD --interval month --feature api-calls=10000", no_args_is_help=True)

COLUMNS = ("identifier", "product", "name", "prices", "trial", "entitlements", "status")
TABLE = (Col("identifier", ID), Col("product", ID, 3), Col("name", TEXT, 2), Col("prices"), Col("trial", QUANTITY, 4),
         Col("entitlements", QUANTITY, 5), Col("status", TEXT, 1))


def prices_text(prices: Sequence[Price], *, plain: bool = False) -> str:
    """`11,000.00 EUR / year, 49.00 USD once` (`plain`: without digit groups, for --csv)."""
    from tollgate.money import format_money
    from tollgate.texts import money_text

    if not prices:
        return "free"
    amount = format_money if plain else money_text
    return ", ".join(
        f"{amount(p.amount, p.currency)} {p.currency} {'once' if p.interval == 'once' else '/ ' + p.interval}"
        for p in prices
    )


def _row(plan: PlanView, *, plain: bool = False) -> list:
    return [
        plan.identifier,
        plan.product,
        plan.name,
        prices_text(plan.prices, plain=plain),
        f"{plan.trial_days}d" if plan.trial_days else "",
        len(plan.entitlements),
        plan.status,
    ]


def charge_text(usage_charge: UsageCharge) -> str:
    """`tiered: first 1,000 included; up to 10,000: 0.10 per unit; above: 0.01 per unit` (the figures
    of its JSON shape, grouped)."""
    charge = usage_charge.to_dict()
    parts = []
    if charge.get("included"):
        parts.append(f"first {number_text(charge['included'])} included")
    model = charge["model"]
    if model == "flat":
        parts.append(f"{number_text(charge['unit_price'])} per unit")
    elif model == "package":
        parts.append(f"{number_text(charge['package_price'])} per {number_text(charge['package_size'])} units "
                     "(partial packages round up)")
    else:
        for tier in charge["tiers"]:
            bound = f"up to {number_text(tier['up_to'])}" if "up_to" in tier else "above"
            prices = []
            if "unit_price" in tier:
                prices.append(f"{number_text(tier['unit_price'])} per unit")
            if "flat_price" in tier:
                prices.append(f"{number_text(tier['flat_price'])} flat")
            parts.append(f"{bound}: {' + '.join(prices)}")
    return f"{model}: " + "; ".join(parts)


@app.command("create")
def create(
    identifier: Annotated[str, typer.Argument(help="The plan's identifier, e.g. pro.", metavar="PLAN")],
    product: Annotated[str, typer.Option("--product", "-p", help="The product this plan sells.", autocompletion=complete_product, metavar="PRODUCT")],
    name: Annotated[Optional[str], typer.Option("--name", help="Display name (default: from the identifier).", metavar="NAME")] = None,
    description: Annotated[Optional[str], typer.Option("--description", help="One line about it.", metavar="TEXT")] = None,
    price: Annotated[
        Optional[list[str]], typer.Option("--price", help='A base price, e.g. 20.00 (repeat; paired in order with --currency and --interval).', metavar="PRICE")
    ] = None,
    currency: Annotated[
        Optional[list[str]], typer.Option("--currency", help="ISO 4217 code of each --price (one for all, or one each).",
                                    autocompletion=complete_currency, metavar="CURRENCY")
    ] = None,
    interval: Annotated[
        Optional[list[str]],
        typer.Option("--interval", help="month, year, 28d, quarter, half-year or once (one for all, or one each).",
                     autocompletion=complete_interval, metavar="INTERVAL"),
    ] = None,
    trial_days: Annotated[Optional[int], typer.Option("--trial-days", help="Days of free trial.", metavar="DAYS")] = None,
    feature: Annotated[
        Optional[list[str]],
        typer.Option("--feature", "-f", help="FEATURE=VALUE: true/false; a number or text; an allowance or unlimited.",
                     autocompletion=complete_feature, metavar="FEATURE=VALUE"),
    ] = None,
    hard: Annotated[
        Optional[list[str]], typer.Option("--hard", help="Metered FEATURE whose allowance is a hard limit.",
                                    autocompletion=complete_metered_feature, metavar="FEATURE")
    ] = None,
    reset: Annotated[
        Optional[list[str]], typer.Option("--reset", help="FEATURE=never|day|week|28d|month|quarter|year (default month).",
                                    autocompletion=complete_metered_feature, metavar="FEATURE=PERIOD")
    ] = None,
    alert: Annotated[
        Optional[list[str]], typer.Option("--alert", help="FEATURE=PERCENT: notify at this share of the allowance.",
                                    autocompletion=complete_metered_feature, metavar="FEATURE=PERCENT")
    ] = None,
    license_activations: Annotated[
        Optional[str],
        typer.Option("--license-activations", help="Issue license keys: activations per key (a number or unlimited).", metavar="N|unlimited"),
    ] = None,
    license_expires: Annotated[
        Optional[str], typer.Option("--license-expires", help="Issue license keys that expire: 30d, 6m, 1y or never.", metavar="30d|6m|1y|never")
    ] = None,
    license_activations_per_day: Annotated[
        Optional[int], typer.Option("--license-activations-per-day", help="At most N activations per key in 24 hours.", metavar="N")
    ] = None,
    license_files_per_day: Annotated[
        Optional[int], typer.Option("--license-files-per-day", help="At most N license files per key in 24 hours.", metavar="N")
    ] = None,
    as_json: Json = False,
) -> None:
    """Create a plan: its prices (none: free) and what it grants per feature (metered: soft, monthly by default).

    Example: tollgate plan create pro --product ai-studio --price 49.00 --currency USD --interval month --feature api-calls=10000 --feature sso=true --hard api-calls
    """
    from tollgate.errors import InvalidInput

    prices = list(price or [])
    currencies, intervals = list(currency or []), list(interval or [])
    for label, values in (("--currency", currencies), ("--interval", intervals)):
        if not prices and values:
            raise InvalidInput(f"{label} is given without --price.")
        if prices and len(values) not in (1, len(prices)):
            raise InvalidInput(
                f"{len(prices)} --price and {len(values)} {label}: give {label} once for all prices, or once per price.",
                hint="Example: --price 49.00 --currency USD --interval month --price 470.00 --currency USD --interval year",
            )
    if prices and not currencies:
        raise InvalidInput("Each --price needs a --currency.", hint="For example --currency USD.")
    if prices and not intervals:
        raise InvalidInput("Each --price needs an --interval (month, year, 28d, quarter, half-year or once).")
    triples = [
        (intervals[i if len(intervals) > 1 else 0], currencies[i if len(currencies) > 1 else 0], amount)
        for i, amount in enumerate(prices)
    ]
    license = None
    per_day = {"activations_per_day": license_activations_per_day, "files_per_day": license_files_per_day}
    if license_activations is not None or license_expires is not None or any(v is not None for v in per_day.values()):
        from tollgate.catalog import make_license

        activations = (license_activations or "unlimited").strip()
        license = make_license(
            int(activations) if activations.isdigit() and len(activations) < 10 else activations,
            license_expires or "never",
            **per_day,
            path="--license",
        )
    data = tollgate().create_plan(
        identifier,
        license=license,
        product=product,
        name=name,
        description=description,
        prices=triples,
        trial_days=trial_days,
        feature_values=feature or (),
        hard=hard or (),
        resets=reset or (),
        alerts=alert or (),
    )
    if as_json:
        output.emit_json(data.to_dict())
    else:
        output.say(
            f"Created plan {data.identifier} ({data.name}) of {data.product}: {prices_text(data.prices)}, "
            f"{len(data.entitlements)} entitlement(s)."
        )


@app.command("list")
def list_(
    product: Annotated[Optional[str], typer.Option("--product", "-p", help="Only this product's plans.", autocompletion=complete_product, metavar="PRODUCT")] = None,
    archived: Annotated[bool, typer.Option("--archived", help="Only archived plans.")] = False,
    show_all: Annotated[bool, typer.Option("--all", help="Active and archived plans.")] = False,
    as_json: Json = False,
    as_csv: Csv = False,
) -> None:
    """List plans (active ones unless --archived or --all), oldest first.

    Example: tollgate plan list --product ai-studio
    """
    status = "all" if show_all else "archived" if archived else "active"
    found = tollgate().plans(product=product, status=status)
    if as_json:
        output.emit_json([p.to_dict() for p in found])
    elif as_csv:
        output.emit_csv(COLUMNS, (_row(p, plain=True) for p in found))
    else:
        with output.paged():
            output.table(TABLE, (_row(p) for p in found))


@app.command("show")
def show(
    identifier: Annotated[str, typer.Argument(help="The plan's identifier.", autocompletion=complete_plan, metavar="PLAN")],
    version: Annotated[Optional[int], typer.Option("--version", help="Show this version (default: the current one).", metavar="N")] = None,
    as_json: Json = False,
) -> None:
    """Show a plan: prices, entitlements, usage charges, license policy, downloads and links.

    Example: tollgate plan show pro --version 1
    """
    from tollgate.clock import rfc3339

    plan = tollgate().plan(identifier, version=version)
    if as_json:
        output.emit_json(plan.to_dict())
        return
    output.fields(
        [
            ("identifier", plan.identifier),
            ("product", plan.product),
            ("name", plan.name),
            ("description", plan.description or "-"),
            ("status", plan.status),
            ("version", str(plan.version)),
            ("prices", prices_text(plan.prices)),
            ("trial", f"{plan.trial_days} days" if plan.trial_days else "-"),
            ("created", rfc3339(plan.created_at)),
            ("archived", rfc3339(plan.archived_at) or "-"),
        ]
    )
    if plan.entitlements:
        output.say("")
        output.table(
            (Col("feature", ID), Col("type", TEXT, 2), Col("grants"), Col("limit", TEXT, 1), Col("alerts", TEXT, 3)),
            (
                [
                    e.feature,
                    e.type,
                    grants_text(e.to_dict()),
                    ("hard" if e.hard else "soft") if e.type == "metered" and not e.unlimited else "",
                    ", ".join(f"{a}%" for a in e.alerts),
                ]
                for e in plan.entitlements
            ),
            title="Entitlements",
        )
    if plan.usage_charges:
        output.say("")
        output.table(
            (Col("feature", ID), Col("currency", ID), Col("charge")),
            ([c.feature, c.currency, charge_text(c)] for c in plan.usage_charges),
            title="Usage charges",
        )
    deliverables = []
    if plan.license:
        limit, expires = plan.license.activation_limit, plan.license.expires_after
        deliverables.append(
            ("license keys", f"{'unlimited' if limit is None else number_text(limit)} activation(s) per key, "
                             + ("never expire" if expires == "never" else f"expire {expires} after purchase"))
        )
        per_day = [f"{number_text(count)} {what} per key per day" for count, what in
                   ((plan.license.activations_per_day, "activations"), (plan.license.files_per_day, "license files"))
                   if count is not None]
        if per_day:
            deliverables.append(("license limits", ", ".join(per_day)))
    deliverables += [("download", f"{d.name} ({number_text(d.size)} bytes, sha256 {d.sha256[:12]}…)"
                       + ("" if d.enabled else " disabled")) for d in plan.downloads]
    deliverables += [("link", f"{ln.name}: {ln.url}") for ln in plan.links]
    if deliverables:
        output.say("")
        output.fields(deliverables, title="Deliverables")


@app.command("archive")
def archive(
    identifier: Annotated[str, typer.Argument(help="The plan's identifier.", autocompletion=complete_plan, metavar="PLAN")],
    yes: Yes = False,
    as_json: Json = False,
) -> None:
    """Archive a plan: it takes no new subscriptions; existing ones keep working.

    Example: tollgate plan archive starter-2024 --yes
    """
    confirm_or_refuse(
        lambda: f"Archive plan {tollgate().plan(identifier).identifier}? It will take no new subscriptions.",
        yes=yes, declined=f"Not archived: {identifier} is unchanged.")
    archived = tollgate().archive_plan(identifier)
    output.result(
        archived.to_dict(), as_json=as_json,
        message=f"Archived plan {archived.identifier}; existing subscriptions keep working.",
    )


@app.command("charge")
def charge(
    plan: Annotated[str, typer.Argument(help="The plan's identifier.", autocompletion=complete_plan, metavar="PLAN")],
    feature: Annotated[str, typer.Option("--feature", "-f", help="The metered feature whose usage is priced.",
                                         autocompletion=complete_metered_feature, metavar="FEATURE")],
    currency: Annotated[str, typer.Option("--currency", help="ISO 4217 code, e.g. USD.", autocompletion=complete_currency, metavar="CURRENCY")],
    model: Annotated[str, typer.Option("--model", help="flat, package, tiered, volume or stair-step.", autocompletion=complete_price_model, metavar="flat|package|tiered|volume|stair-step")],
    unit_price: Annotated[Optional[str], typer.Option("--unit-price", help="flat: the price per unit, e.g. 0.01.", metavar="UNIT_PRICE")] = None,
    package_size: Annotated[Optional[int], typer.Option("--package-size", help="package: units per package.", metavar="N")] = None,
    package_price: Annotated[Optional[str], typer.Option("--package-price", help="package: price per package.", metavar="PACKAGE_PRICE")] = None,
    tier: Annotated[
        Optional[list[str]],
        typer.Option("--tier", help="UP_TO:PRICE, in order; the last may leave UP_TO out (:0.01). "
                                    "tiered/volume: price per unit; stair-step: flat price of the step.", metavar="UP_TO:PRICE"),
    ] = None,
    included: Annotated[Optional[str], typer.Option("--included", help="Units free before charging starts.", metavar="INCLUDED")] = None,
    as_json: Json = False,
) -> None:
    """Price a plan's metered usage (one charge per feature and currency; giving it again replaces it).

    Example: tollgate plan charge pro --feature ai-tokens --currency USD --model tiered --tier 1000:0.10 --tier 5000:0.05 --tier :0.01
    """
    from tollgate.errors import InvalidInput

    data: dict = {"feature": feature, "currency": currency, "model": model}
    if included is not None:
        data["included"] = included
    if unit_price is not None:
        data["unit_price"] = unit_price
    if package_size is not None:
        data["package_size"] = package_size
    if package_price is not None:
        data["package_price"] = package_price
    if tier:
        tiers = []
        for number, text in enumerate(tier, start=1):
            bound, sep, amount = text.partition(":")
            if not sep:
                raise InvalidInput(f"--tier {text!r} is not UP_TO:PRICE.", hint="For example --tier 1000:0.10 or --tier :0.01.")
            entry: dict = {}
            if bound.strip():
                entry["up_to"] = bound.strip()
            entry["flat_price" if model == "stair-step" else "unit_price"] = amount.strip()
            tiers.append(entry)
        data["tiers"] = tiers
    result = tollgate().set_usage_charge(plan, data)
    if as_json:
        output.emit_json(result.to_dict())
    else:
        verb = "Added" if result.action == "create" else "Replaced"
        output.say(f"{verb} the {currency.upper()} usage charge of {feature} on plan {plan}: {charge_text(result.charge)}.")


@app.command("versions")
def versions(
    identifier: Annotated[str, typer.Argument(help="The plan's identifier.", autocompletion=complete_plan, metavar="PLAN")],
    as_json: Json = False,
) -> None:
    """List a plan's versions: when each was made, what changed from the one before, its subscribers.

    A change to what a plan sells while anyone is on it makes a new version (subscribers stay).
    Example: tollgate plan versions pro
    """
    from tollgate.clock import rfc3339

    found = tollgate().versions(identifier)
    if as_json:
        output.emit_json([v.to_dict() for v in found])
        return
    output.table(
        (Col("version", QUANTITY), Col("created", DATE, 2), Col("changes", TEXT, 1), Col("subscribers", QUANTITY)),
        ([f"{v.version}{' (current)' if v.current else ''}", rfc3339(v.created_at),
          ", ".join(v.changes) or ("-" if v.version > 1 else "first version"),
          f"{v.subscribers}" + (f" (+{v.scheduled} at period end)" if v.scheduled else "")] for v in found),
        title=f"Versions of {identifier}",
    )


@app.command("migrate")
def migrate(
    identifier: Annotated[str, typer.Argument(help="The plan's identifier.", autocompletion=complete_plan, metavar="PLAN")],
    to: Annotated[int, typer.Option("--to", help="The version to move subscriptions to.", metavar="N")],
    from_: Annotated[Optional[int], typer.Option("--from", help="Only subscriptions on this version.", metavar="M")] = None,
    customer: Annotated[Optional[list[str]], typer.Option("--customer", help="Only this customer's subscriptions (repeat).",
                                                          autocompletion=complete_customer, metavar="CUSTOMER")] = None,
    at: Annotated[str, typer.Option("--at", help="now, or period-end: when each subscription's current period ends.",
                                    metavar="now|period-end")] = "now",
    dry_run: Annotated[bool, typer.Option("--dry-run", help="Show each move and its figures; write nothing.")] = False,
    yes: Yes = False,
    as_json: Json = False,
) -> None:
    """Move a plan's live subscriptions to another version, with what each bill and entitlement becomes.

    Example: tollgate plan migrate pro --to 2 --dry-run
    """
    customers = customer or []
    if not dry_run and not yes:  # what would move, first: nothing to move asks nothing
        planned = tollgate().migrate(identifier, to=to, from_=from_, customers=customers, at=at, dry_run=True)
        source = f" from version {from_}" if from_ is not None else ""
        who = f" of {', '.join(customers)}" if customers else ""
        if not planned.moves:
            output.say(f"Nothing to move: no live subscription{who} of {identifier}{source} is off version {to}.")
            return
        confirm_or_refuse(
            lambda: (f"Move {len(planned.moves)} live subscription(s){who} of {identifier}{source} to version "
                     f"{to} ({'now' if at == 'now' else 'at period end'})? Their prices and entitlements change."),
            yes=yes, declined=f"Not migrated: the subscriptions of {identifier} are unchanged.")
    result = tollgate().migrate(identifier, to=to, from_=from_, customers=customers, at=at, dry_run=dry_run)
    if as_json:
        output.emit_json(result.to_dict())
        return
    moves = result.moves
    if dry_run:
        output.table(
            (Col("subscription", ID), Col("customer", ID), Col("from", QUANTITY), Col("to", QUANTITY),
             Col("current amount", QUANTITY), Col("new amount", QUANTITY), Col("entitlement changes", TEXT, 1)),
            ([m.subscription, m.customer, m.from_version, m.to_version,
              _amount(m.current_amount, m.currency), _amount(m.new_amount, m.currency),
              ", ".join(_change_text(c) for c in m.entitlements) or "-"] for m in moves),
            title=f"Migration of {identifier} to version {to} (dry run: nothing written)",
        )
    when = "now" if at == "now" else "at the end of each one's current period"
    verb = "Would move" if dry_run else "Moved" if at == "now" else "Scheduled"
    output.say(f"{verb} {len(moves)} subscription(s) of {identifier} to version {to} ({when}).")


def _amount(amount: str | None, currency: str | None) -> str:
    return "-" if amount is None else f"{amount} {currency}"


def _change_text(change: dict) -> str:
    def grant(entitlement: dict | None) -> str:
        return "none" if entitlement is None else grants_text(entitlement)

    return f"{change['feature']} {grant(change['from'])} -> {grant(change['to'])}"
