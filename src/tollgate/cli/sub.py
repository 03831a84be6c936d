"""`tollgate sub ...`: add, edit, cancel, list, show subscriptions."""

from __future__ import annotations

from typing import Annotated, Optional

import typer

from tollgate.cli import output
from tollgate.cli.complete import (
    complete_active_customer,
    complete_currency,
    complete_customer,
    complete_feature,
    complete_interval,
    complete_plan,
    complete_subscription,
    complete_subscription_status,
)
from tollgate.cli.context import UNTIL, WHEN, Csv, EveryRow, Json, Limit, Yes, confirm_or_refuse, tollgate
from tollgate.cli.grid import AMOUNT, DATE, ID, TEXT, Col
from tollgate.cli.help import Typer
from tollgate.texts import price_text
from tollgate.texts import subscription_status_text as status_text

app = Typer(help="Subscriptions: a customer on a plan, with its own feature adjustments.\n\nExample: tollgate sub add acme-inc pro --interval month --currency USD", no_args_is_help=True)

COLUMNS = (Col("id", ID), Col("customer", ID), Col("plan", ID, 2), Col("status"), Col("price", AMOUNT, 3),
           Col("start", DATE, 4), Col("period end", DATE, 1), Col("trial end", DATE, 5))

At = Annotated[
    Optional[str],
    typer.Option("--at", metavar=WHEN, help="Show the state at this moment (default now)."),
]
Features = Annotated[
    Optional[list[str]],
    typer.Option("--feature", "-f", metavar="FEATURE=VALUE", autocompletion=complete_feature,
                 help="This subscription's own value or allowance for a feature of the plan (repeat)."),
]
Without = Annotated[
    Optional[list[str]],
    typer.Option("--without", metavar="FEATURE", autocompletion=complete_feature,
                 help="Leave one of the plan's features out of this subscription (repeat)."),
]


def _row(sub: dict) -> list:
    return [
        sub["id"],
        sub["customer"],
        sub["plan"],
        status_text(sub),
        price_text(sub),
        (sub["start"] or "")[:10],
        (sub["current_period_end"] or "never")[:10],
        (sub["trial_end"] or "")[:10],
    ]


def _done(view, as_json: bool, message: str) -> None:
    output.result(view.to_dict(), as_json=as_json, message=message)


@app.command("add")
def add(
    customer: Annotated[str, typer.Argument(help="The customer's identifier.", autocompletion=complete_active_customer, metavar="CUSTOMER")],
    plan: Annotated[str, typer.Argument(help="The plan's identifier.", autocompletion=complete_plan, metavar="PLAN")],
    interval: Annotated[
        Optional[str], typer.Option("--interval", help="Billing interval, one the plan is priced in.",
                                    autocompletion=complete_interval, metavar="INTERVAL")
    ] = None,
    currency: Annotated[
        Optional[str], typer.Option("--currency", help="Currency, one the plan is priced in.",
                                    autocompletion=complete_currency, metavar="CURRENCY")
    ] = None,
    start: Annotated[
        Optional[str], typer.Option("--start", metavar=WHEN, help="When it starts (default now); the anniversary.")
    ] = None,
    trial_days: Annotated[
        Optional[int], typer.Option("--trial-days", min=0, help="Days of free trial (default: the plan's; 0: none).", metavar="DAYS")
    ] = None,
    trial_end: Annotated[
        Optional[str], typer.Option("--trial-end", metavar=UNTIL, help="When the trial ends (7d = 7 days from now).")
    ] = None,
    feature: Features = None,
    without: Without = None,
    another: Annotated[
        bool, typer.Option("--another", help="Add it even though the customer has a live subscription to the plan.")
    ] = False,
    as_json: Json = False,
) -> None:
    """Subscribe a customer to a plan.

    The plan's price is used when it has one (a free plan needs none); with several, choose with
    --interval and --currency. Status is trialing until the trial ends, then active.
    Example: tollgate sub add acme-inc pro --interval month --currency USD --feature api-calls=20000 --without sso
    """
    view = tollgate().add_subscription(
        customer, plan, interval=interval, currency=currency, start=start,
        trial_days=trial_days, trial_end=trial_end, features=feature or (),
        without=without or (), another=another,
    )
    data = view.to_dict()
    trial = f", trial until {data['trial_end']}" if data["trial_end"] and data["status"] == "trialing" else ""
    _done(view, as_json,
          f"Subscribed {data['customer']} to {data['plan']} ({price_text(data)}): {data['id']}, {data['status']}{trial}.")


@app.command("edit")
def edit(
    subscription: Annotated[str, typer.Argument(help="The subscription id (sub_...).",
                                                autocompletion=complete_subscription, metavar="SUB")],
    status: Annotated[
        Optional[str], typer.Option("--status", help="active, past_due, canceled or expired.",
                                    autocompletion=complete_subscription_status, metavar="STATUS")
    ] = None,
    trial_end: Annotated[
        Optional[str], typer.Option("--trial-end", metavar=UNTIL, help="Move the end of the trial (7d = 7 days from now).")
    ] = None,
    plan: Annotated[
        Optional[str], typer.Option("--plan", help="Move to another plan (the period and its usage stay).",
                                    autocompletion=complete_plan, metavar="PLAN")
    ] = None,
    interval: Annotated[
        Optional[str], typer.Option("--interval", help="With --plan: the new plan's interval.",
                                    autocompletion=complete_interval, metavar="INTERVAL")
    ] = None,
    currency: Annotated[
        Optional[str], typer.Option("--currency", help="With --plan: the new plan's currency.",
                                    autocompletion=complete_currency, metavar="CURRENCY")
    ] = None,
    feature: Features = None,
    without: Without = None,
    restore: Annotated[
        Optional[list[str]], typer.Option("--restore", metavar="FEATURE", autocompletion=complete_feature,
                                          help="Drop this subscription's adjustment of a feature (back to the plan).")
    ] = None,
    as_json: Json = False,
) -> None:
    """Change a subscription: status, trial end, plan, or its own feature adjustments.

    Statuses: trialing -> active | past_due | canceled | expired; active -> past_due | canceled |
    expired; past_due -> active | canceled | expired. Canceled and expired are final.
    Example: tollgate sub edit sub_4f9k2m0x7q1z8w --plan team --feature api-calls=50000
    """
    view = tollgate().edit_subscription(
        subscription, status=status, trial_end=trial_end, plan=plan, interval=interval,
        currency=currency, features=feature or (), without=without or (), restore=restore or (),
    )
    data = view.to_dict()
    _done(view, as_json, f"Updated {data['id']}: {data['plan']}, {status_text(data)}.")


@app.command("cancel")
def cancel(
    subscription: Annotated[str, typer.Argument(help="The subscription id (sub_...).",
                                                autocompletion=complete_subscription, metavar="SUB")],
    at_period_end: Annotated[
        bool, typer.Option("--at-period-end", help="Keep access until the current period ends.")
    ] = False,
    yes: Yes = False,
    as_json: Json = False,
) -> None:
    """Cancel a subscription: access ends now, or at the end of the current period.

    Example: tollgate sub cancel sub_4f9k2m0x7q1z8w --at-period-end --yes
    """
    def question() -> str:
        found = tollgate().subscription(subscription).to_dict()
        when = "at the end of its current period" if at_period_end else "now"
        return f"Cancel {found['id']} ({found['customer']}, {found['plan']})? Its access ends {when}."

    confirm_or_refuse(question, yes=yes, declined=f"Not canceled: {subscription} is unchanged.")
    view = tollgate().cancel_subscription(subscription, at_period_end=at_period_end)
    data = view.to_dict()
    if at_period_end:
        message = f"Canceled {data['id']} at period end: access continues until {data['cancel_at']}."
    else:
        message = f"Canceled {data['id']}: access ended {data['canceled_at']}."
    _done(view, as_json, message)


@app.command("resume")
def resume(
    subscription: Annotated[str, typer.Argument(metavar="SUB", help="The subscription id (sub_...).",
                                                autocompletion=complete_subscription)],
    as_json: Json = False,
) -> None:
    """Take back a cancellation scheduled with --at-period-end: the subscription renews again and its
    license keys stay valid. Refused when nothing is scheduled or it has already ended.

    Example: tollgate sub resume sub_4f9k2m0x7q1z8w
    """
    view = tollgate().resume_subscription(subscription)
    data = view.to_dict()
    _done(view, as_json, f"Resumed {data['id']}: {data['plan']} for {data['customer']} renews again; "
                         f"no cancellation is scheduled.")


@app.command("list")
def list_(
    customer: Annotated[
        Optional[str], typer.Option("--customer", "-c", help="Only this customer's.", autocompletion=complete_customer, metavar="CUSTOMER")
    ] = None,
    status: Annotated[
        Optional[str], typer.Option("--status", help="Only those with this status (at --at).",
                                    autocompletion=complete_subscription_status, metavar="STATUS")
    ] = None,
    at: At = None,
    limit: Limit = None,
    show_all: EveryRow = False,
    as_json: Json = False,
    as_csv: Csv = False,
) -> None:
    """List subscriptions, oldest first (status and period as of now, or --at). On a terminal, the
    first 50 (and how many there are); piped, --json and --csv give every one unless --limit.

    Example: tollgate sub list --customer acme-inc --status active
    """
    found = [v.to_dict() for v in tollgate().subscriptions(customer=customer, status=status, at=at)]
    if as_json or as_csv:
        found = found[:limit]
    if as_json:
        output.emit_json(found)
    elif as_csv:
        keys = [k for k in (found[0] if found else {"id": 0}) if k != "adjustments"]
        output.emit_csv(keys, ([row.get(k) for k in keys] for row in found))
    else:
        output.list_table(COLUMNS, [_row(s) for s in found], limit=limit, every=show_all)


@app.command("show")
def show(
    subscription: Annotated[str, typer.Argument(help="The subscription id (sub_...).",
                                                autocompletion=complete_subscription, metavar="SUB")],
    at: At = None,
    as_json: Json = False,
) -> None:
    """Show a subscription: plan, price, status, dates, current period and its own adjustments.

    Example: tollgate sub show sub_4f9k2m0x7q1z8w
    """
    view = tollgate().subscription(subscription, at=at)
    data = view.to_dict()
    if as_json:
        output.emit_json(data)
        return
    output.fields(
        [
            ("id", data["id"]),
            ("customer", data["customer"]),
            ("plan", data["plan"]),
            ("plan version", str(data["plan_version"]) + (
                f" (version {data['next_version']} from {data['next_version_at']})" if data["next_version"] else "")),
            ("status", status_text(data)),
            ("price", price_text(data)),
            ("start", data["start"]),
            ("trial end", data["trial_end"] or "-"),
            ("current period", f"{data['current_period_start']} -> {data['current_period_end'] or 'never ends'}"),
            ("cancel at", data["cancel_at"] or "-"),
            ("canceled", data["canceled_at"] or "-"),
        ]
    )
    if view.adjustments:
        output.say("")
        output.table((Col("feature", ID), Col("type", TEXT, 1), Col("adjustment")), ([a.feature, a.type, a.describe()] for a in view.adjustments),
                     title="Adjustments (win over the plan)")
