"""The hot read path's view of the schema: lightweight Core table clauses.

Defining the SQLModel classes (models/) costs about 3 ms per table at start-up, and `check`,
`entitlements` and `usage show` only ever run Core statements over these tables. So they use the
clauses below, which cost next to nothing. They are a second spelling of the same tables:
tests/test_tables.py fails unless each one has exactly its model's columns and column types.
"""

from __future__ import annotations

from sqlalchemy import BigInteger, Boolean, DateTime, Integer, String, column, table

customer = table(
    "customer",
    column("id", Integer),
    column("identifier", String),
    column("billing_id", String),
    column("name", String),
    column("email", String),
    column("status", String),
    column("search_text", String),
    column("created_at", DateTime),
    column("updated_at", DateTime),
    column("archived_at", DateTime),
)

feature = table(
    "feature",
    column("id", Integer),
    column("identifier", String),
    column("name", String),
    column("type", String),
    column("unit", String),
    column("description", String),
    column("status", String),
    column("created_at", DateTime),
    column("updated_at", DateTime),
    column("archived_at", DateTime),
)

plan = table(
    "plan",
    column("id", Integer),
    column("identifier", String),
    column("product_id", Integer),
    column("name", String),
    column("description", String),
    column("trial_days", Integer),
    column("status", String),
    column("created_at", DateTime),
    column("updated_at", DateTime),
    column("archived_at", DateTime),
)

plan_entitlement = table(
    "plan_entitlement",
    column("id", Integer),
    column("plan_id", Integer),
    column("feature_id", Integer),
    column("value", String),
    column("limit_micros", BigInteger),
    column("reset", String),
    column("hard", Boolean),
    column("alerts", String),
)

subscription = table(
    "subscription",
    column("id", Integer),
    column("public_id", String),
    column("customer_id", Integer),
    column("plan_id", Integer),
    column("status", String),
    column("interval", String),
    column("currency", String),
    column("amount_minor", BigInteger),
    column("start_at", DateTime),
    column("trial_end", DateTime),
    column("cancel_at", DateTime),
    column("canceled_at", DateTime),
    column("created_at", DateTime),
    column("updated_at", DateTime),
)

subscription_feature = table(
    "subscription_feature",
    column("id", Integer),
    column("subscription_id", Integer),
    column("feature_id", Integer),
    column("excluded", Boolean),
    column("value", String),
    column("limit_micros", BigInteger),
    column("unlimited", Boolean),
    column("hard", Boolean),
    column("reset", String),
)

override = table(
    "override",
    column("id", Integer),
    column("customer_id", Integer),
    column("feature_id", Integer),
    column("value", String),
    column("limit_micros", BigInteger),
    column("unlimited", Boolean),
    column("hard", Boolean),
    column("expires_at", DateTime),
    column("note", String),
    column("created_at", DateTime),
    column("updated_at", DateTime),
)

usage_event = table(
    "usage_event",
    column("id", Integer),
    column("key", String),
    column("customer_id", Integer),
    column("feature_id", Integer),
    column("quantity_micros", BigInteger),
    column("occurred_at", DateTime),
    column("recorded_at", DateTime),
    column("voids", String),
    column("reason", String),
)

usage_rollup = table(
    "usage_rollup",
    column("customer_id", Integer),
    column("feature_id", Integer),
    column("level", Integer),
    column("start", DateTime),
    column("total_micros", BigInteger),
    column("events", BigInteger),
)

ALL = (customer, feature, plan, plan_entitlement, subscription, subscription_feature, override, usage_event,
       usage_rollup)
