"""The `Tollgate` methods of access: subscriptions, overrides, effective entitlements, `check` and
`consume` (mixed into api.Tollgate). Times: see api.base.Moment."""

from __future__ import annotations

from collections.abc import Iterable
from decimal import Decimal
from typing import TYPE_CHECKING, Any

from tollgate.api.base import Assignments, Base, FeatureValue, Moment, assignments, moment, value_text

if TYPE_CHECKING:
    from tollgate.entitlement_views import CheckResult, EffectiveEntitlement, FeatureRef
    from tollgate.overrides import OverrideView
    from tollgate.profile import SubscriptionView

Quantity = int | str | Decimal
"""An exact quantity: an int, decimal text or a Decimal (never a float)."""


class AccessMethods(Base):
    def add_subscription(
        self,
        customer: str,
        plan: str,
        *,
        interval: str | None = None,
        currency: str | None = None,
        start: Moment | None = None,
        trial_days: int | None = None,
        trial_end: Moment | None = None,
        features: Assignments = (),
        without: Iterable[str] = (),
        another: bool = False,
    ) -> SubscriptionView:
        """Subscribe a customer to a plan; returns its profile.SubscriptionView.

        `features`: {"api-calls": "20000"} or ["api-calls=20000"]; `without`: features left out.
        A second live subscription of the customer to the plan is refused unless `another`."""
        from tollgate import subscriptions

        with self.db.write() as session:
            sub = subscriptions.add_subscription(
                session, customer=customer, plan=plan, interval=interval, currency=currency,
                start=moment(start, "start date"), trial_days=trial_days,
                trial_end=moment(trial_end, "trial end", future=True),
                features=assignments(features), without=list(without), another=another,
            )
            return subscriptions.view(session, sub)

    def edit_subscription(
        self,
        subscription: str,
        *,
        status: str | None = None,
        trial_end: Moment | None = None,
        plan: str | None = None,
        interval: str | None = None,
        currency: str | None = None,
        features: Assignments = (),
        without: Iterable[str] = (),
        restore: Iterable[str] = (),
    ) -> SubscriptionView:
        """Change status, trial end, plan (and price) or feature adjustments; returns the SubscriptionView."""
        from tollgate import subscriptions

        with self.db.write() as session:
            sub = subscriptions.edit_subscription(
                session, subscription=subscription, status=status,
                trial_end=moment(trial_end, "trial end", future=True),
                plan=plan, interval=interval, currency=currency, features=assignments(features),
                without=list(without), restore=list(restore),
            )
            return subscriptions.view(session, sub)

    def cancel_subscription(self, subscription: str, *, at_period_end: bool = False) -> SubscriptionView:
        """Cancel now, or at the end of the current billing period; returns the SubscriptionView."""
        from tollgate import subscriptions

        with self.db.write() as session:
            sub = subscriptions.cancel_subscription(session, subscription=subscription, at_period_end=at_period_end)
            return subscriptions.view(session, sub)

    def resume_subscription(self, subscription: str) -> SubscriptionView:
        """Take back a cancellation scheduled at the period end; returns the SubscriptionView."""
        from tollgate import subscriptions
        from tollgate.subscription_undo import resume_subscription

        with self.db.write() as session:
            return subscriptions.view(session, resume_subscription(session, subscription=subscription))

    def subscriptions(self, *, customer: str | None = None, status: str | None = None,
                      at: Moment | None = None) -> list[SubscriptionView]:
        """SubscriptionViews in creation order; `status` filters on the status at `at` (default now)."""
        from tollgate import subscriptions

        when = moment(at, "time")
        with self.db.read() as session:
            found = subscriptions.list_subscriptions(session, customer=customer, status=status, at=when)
            return subscriptions.views(session, found, at=when)

    def subscription(self, subscription: str, *, at: Moment | None = None) -> SubscriptionView:
        from tollgate import subscriptions

        with self.db.read() as session:
            return subscriptions.view(session, subscriptions.get_subscription(session, subscription),
                                      at=moment(at, "time"))

    def set_override(
        self,
        customer: str,
        feature: str,
        value: FeatureValue,
        *,
        hard: bool | None = None,
        expires: Moment | None = None,
        note: str | None = None,
    ) -> OverrideView:
        """Give a customer its own value/allowance for a feature; returns an overrides.OverrideView.

        `value`: True/False, a number or text, or a number / "unlimited" for metered features."""
        from tollgate import overrides

        with self.db.write() as session:
            return overrides.set_override(session, customer=customer, feature=feature, value=value_text(value),
                                          hard=hard, expires=moment(expires, "expiry date", future=True), note=note)

    def unset_override(self, customer: str, feature: str) -> OverrideView:
        """Remove the customer's override of `feature`; returns what it was."""
        from tollgate import overrides

        with self.db.write() as session:
            return overrides.unset_override(session, customer=customer, feature=feature)

    def overrides(self, customer: str | None = None, *, at: Moment | None = None) -> list[OverrideView]:
        from tollgate import overrides

        with self.db.read() as session:
            return overrides.list_overrides(session, customer=customer, at=moment(at, "time"))

    def entitlements(self, customer: str, at: Moment | None = None) -> list[EffectiveEntitlement]:
        """Every effective entitlement (entitlement_views.EffectiveEntitlement) of the customer at `at`."""
        from tollgate import entitlements

        with self.db.connect() as conn:
            return entitlements.effective_entitlements(conn, customer=customer, at=moment(at, "time"))

    def entitlement(self, customer: str, feature: str, at: Moment | None = None) -> EffectiveEntitlement | None:
        """One effective entitlement, or None when nothing grants the feature."""
        from tollgate import entitlements

        with self.db.connect() as conn:
            return entitlements.effective_entitlement(conn, customer=customer, feature=self._feature_ref(
                conn, feature), at=moment(at, "time"))

    def check(self, customer: str, feature: str, quantity: Quantity = 1, at: Moment | None = None) -> CheckResult:
        """May the customer use `quantity` of the feature now (or at `at`)? An
        entitlement_views.CheckResult (truthy when allowed; `.to_dict()` is the `check --json` shape).
        Records nothing.

        Unknown customer or feature: NotFound. Feature lookups are cached per Tollgate instance (a
        feature's id, identifier and type never change)."""
        from tollgate import entitlements

        when = moment(at, "time")
        with self.db.connect() as conn:
            return entitlements.check(conn, customer=customer, feature=self._feature_ref(conn, feature),
                                      quantity=quantity, at=when)

    def consume(self, customer: str, feature: str, quantity: Quantity = 1, key: str | None = None) -> CheckResult:
        """Check and record `quantity` units now, atomically (one BEGIN IMMEDIATE transaction): any number
        of concurrent callers can never push usage past a hard limit.

        Returns the CheckResult. Past a hard limit it is the DENIED result (allowed False, nothing
        recorded): consume does not raise for a denial. `key` makes retries safe: a key already
        recorded for the same event is not counted twice. Unknown customer or feature: NotFound.

        Waiting for the write lock: up to `consume_patience` seconds (30) in all, then StorageError."""
        from tollgate import entitlements

        def attempt() -> CheckResult:  # on a Core connection, as check: no ORM session on the hot path
            with self.db.connect(write=True) as conn:
                return entitlements.consume(conn, customer=customer, quantity=quantity, key=key,
                                            feature=self._feature_ref(conn, feature))

        return self._retrying_lock(attempt)

    def _feature_ref(self, session: Any, feature: str) -> FeatureRef:
        cache: dict[str, FeatureRef] = self.__dict__.setdefault("_features", {})
        ref = cache.get(feature)
        if ref is None:
            from tollgate.entitlements import lookup_feature

            ref = cache[feature] = lookup_feature(session, feature)
        return ref
