"""A hypothesis state machine over the need/offer/rating lifecycle, driving the real services.

A small cast — Ann (customer only), Bea (customer and provider), Cal and Dan (providers), all
around Austin and all serving catering — post needs, offer, revise, withdraw, accept, cancel
(with and without a reason), complete, let needs expire, rate and reply, in any order. Each rule
predicts from a plain model whether the service succeeds or which ``DomainError`` it raises,
and updates the model. After every step the invariants are checked against what is committed
in the DATABASE (a separate connection), and the database is compared with the model:

- at most one accepted offer per need; ``accepted_offer_id`` is set exactly when the need has
  one accepted offer, and points at it;
- an assigned or completed need has exactly one accepted offer; an open or expired need has
  none (a need cancelled after assignment keeps its accepted offer, as history);
- a pending offer only exists on an open need;
- ``offer_count`` = offers not withdrawn (pending + accepted + declined: withdrawing gives the
  slot back, declined offers still count because they were received — docs/architecture.md),
  and never more than the need's cap;
- ratings exist only for completed needs, at most one per need, by the need's customer, for the
  accepted offer's provider;
- need statuses move only along ``needs.services.TRANSITIONS``; accepted, declined and
  withdrawn offers never change status again.

Each rule is one unit of work, like one request: the session is removed after it.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from conftest import AUSTIN, KEEP, need_data
from flask import Flask
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import (
    Bundle,
    RuleBasedStateMachine,
    initialize,
    invariant,
    multiple,
    precondition,
    rule,
    run_state_machine_as_test,
)
from sqlalchemy import delete, select

from marketplace import lifecycle
from marketplace.accounts import services as accounts
from marketplace.accounts.models import User
from marketplace.errors import Conflict, DomainError, Forbidden, Invalid, NotFound
from marketplace.extensions import db
from marketplace.needs import services as needs
from marketplace.needs.models import Need, NeedStatus
from marketplace.offers import services as offers
from marketplace.offers.models import Offer, OfferStatus
from marketplace.providers import services as providers
from marketplace.ratings import services as ratings
from marketplace.ratings.models import Rating

CUSTOMERS = ("ann", "bea")
PROVIDERS = ("bea", "cal", "dan")
EVERYONE = ("ann", "bea", "cal", "dan")
HARD_CAP = offers.HARD_MAX_OFFERS
# Who acts: "them" is the person the action belongs to (the need's customer, the offer's
# provider, the rated provider); anyone else is tried too, and must be refused.
ACTOR = st.sampled_from(("them", "them", "them", *EVERYONE))
TTL_HOURS = (1, 48, 48, 24 * 20)  # how long a posted need stays open
CANCELLER = st.sampled_from(("them", "them", "accepted", "accepted", *EVERYONE))

OPEN, ASSIGNED, COMPLETED = NeedStatus.OPEN, NeedStatus.ASSIGNED, NeedStatus.COMPLETED
CANCELLED, EXPIRED = NeedStatus.CANCELLED, NeedStatus.EXPIRED
PENDING, ACCEPTED = OfferStatus.PENDING, OfferStatus.ACCEPTED
DECLINED, WITHDRAWN = OfferStatus.DECLINED, OfferStatus.WITHDRAWN

MACHINE_SETTINGS = settings(
    max_examples=25,
    stateful_step_count=20,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much],
)


@dataclass
class MNeed:
    id: int
    customer: str
    max_offers: int | None
    expires_at: datetime
    status: NeedStatus = OPEN
    offers: dict[str, int] = field(default_factory=dict)  # provider name -> offer id
    accepted: int | None = None
    offer_count: int = 0
    rating: int | None = None
    cancelled_by: str | None = None
    cancel_reason: str | None = None


@dataclass
class MOffer:
    id: int
    need_id: int
    provider: str
    price: int
    status: OfferStatus = PENDING


@dataclass
class MRating:
    id: int
    need_id: int
    provider: str
    stars: int
    replied: bool = False


_seq = iter(range(1, 10**9))


class Lifecycle(RuleBasedStateMachine):
    need_ids = Bundle("need_ids")
    offer_ids = Bundle("offer_ids")
    rating_ids = Bundle("rating_ids")

    def __init__(self, app: Flask) -> None:
        super().__init__()
        self.app = app
        self.user_ids: dict[str, int] = {}
        self.provider_ids: dict[str, int] = {}
        run = next(_seq)
        for name in EVERYONE:
            user = accounts.register(f"{name}.{run}@example.com", "correct horse battery",
                                     name.title())
            self.user_ids[name] = user.id
            if name in PROVIDERS:
                provider = providers.save_profile(user, {
                    "handle": f"{name}-{run}", "display_name": name.title(), "bio": "",
                    "categories": ["catering"], "base": {"lat": AUSTIN[0], "lon": AUSTIN[1]},
                    "radius_km": 25, "active": True,
                })
                self.provider_ids[name] = provider.id
        db.session.remove()
        self.by_user_id = {uid: name for name, uid in self.user_ids.items()}
        self.by_provider_id = {pid: name for name, pid in self.provider_ids.items()}
        self.m_needs: dict[int, MNeed] = {}
        self.m_offers: dict[int, MOffer] = {}
        self.m_ratings: dict[int, MRating] = {}
        self.seen_need_status: dict[int, NeedStatus] = {}
        self.seen_offer_status: dict[int, OfferStatus] = {}

    def teardown(self) -> None:
        """Empty the tables for the next example: DELETE, which on a few rows is much faster
        than conftest's TRUNCATE (the ``app`` fixture still truncates after the test)."""
        db.session.remove()
        with db.engine.begin() as conn:
            for table in reversed(db.metadata.sorted_tables):
                if table.name not in KEEP:
                    conn.execute(delete(table))

    # -- helpers --------------------------------------------------------------------------------

    def user(self, name: str) -> User:
        found = db.session.get(User, self.user_ids[name])
        assert found is not None
        return found

    def attempt(self, expected: type[DomainError] | None, call: Any) -> Any:
        """Run one service call as one unit of work; it must succeed exactly when the model
        says so, and otherwise raise the predicted kind of DomainError."""
        try:
            result = call()
        except DomainError as exc:
            assert expected is not None, f"the model expected success, got {exc!r}"
            assert isinstance(exc, expected), f"expected {expected.__name__}, got {exc!r}"
            return None
        finally:
            db.session.remove()
        assert expected is None, f"expected {expected.__name__}, but it succeeded"
        return result

    def role(self, who: str, need: MNeed) -> str | None:
        """needs.services.viewer_role, as the model sees it."""
        if who == need.customer:
            return "customer"
        if who not in PROVIDERS:
            return None
        offer_id = need.offers.get(who)
        if offer_id is not None:
            return "accepted_provider" if need.accepted == offer_id else "offering_provider"
        return "matched_provider" if need.status == OPEN else None

    def decline_pending(self, need: MNeed, but: int | None = None) -> None:
        for offer_id in need.offers.values():
            offer = self.m_offers[offer_id]
            if offer.id != but and offer.status == PENDING:
                offer.status = DECLINED

    def offer_own(self, who: str, offer: MOffer) -> type[DomainError] | None:
        """What offers.services._own says before it looks at the offer's state."""
        need = self.m_needs[offer.need_id]
        if who == need.customer:
            return Forbidden
        if who != offer.provider:
            return NotFound
        return None

    # -- rules ----------------------------------------------------------------------------------

    # Start with a need and an offer, so that every rule but ``reply`` can run from the start.
    @initialize(target=need_ids)
    def first_need(self) -> Any:
        return self.post_need("ann", None, 48)

    @initialize(target=offer_ids)
    def first_offer(self) -> Any:
        return self.make_offer(self.post_need("bea", None, 48), "cal", None)

    @rule(target=need_ids, customer=st.sampled_from(CUSTOMERS),
          max_offers=st.sampled_from([None, None, 1, 2]), ttl_hours=st.sampled_from(TTL_HOURS))
    def post_need(self, customer: str, max_offers: int | None, ttl_hours: int) -> Any:
        data = need_data(max_offers=max_offers,
                         expires_at=datetime.now(UTC) + timedelta(hours=ttl_hours))

        def post() -> tuple[int, datetime]:
            need = needs.create(self.user(customer), data)
            return need.id, need.expires_at

        need_id, expires_at = self.attempt(None, post)
        self.m_needs[need_id] = MNeed(need_id, customer, max_offers, expires_at)
        return need_id

    @rule(target=offer_ids, need_id=need_ids, who=st.sampled_from(EVERYONE),
          amount=st.integers(1, 50_000) | st.none())
    def make_offer(self, need_id: int, who: str, amount: int | None) -> Any:
        need = self.m_needs[need_id]
        expected: type[DomainError] | None = None
        if who not in PROVIDERS or who == need.customer:
            expected = Forbidden
        elif (who in need.offers or need.status != OPEN
              or need.offer_count >= (need.max_offers or HARD_CAP)):
            expected = Conflict  # one offer each; only while open; not beyond the cap
        data: dict[str, Any] = {"message": f"{who} can do it"}
        if amount is not None:
            data["price"] = {"amount": amount, "currency": "USD"}
        offer_id = self.attempt(expected, lambda: offers.make(self.user(who), need_id, data).id)
        if offer_id is None:
            return multiple()
        need.offers[who] = offer_id
        need.offer_count += 1
        self.m_offers[offer_id] = MOffer(offer_id, need_id, who,
                                         40000 if amount is None else amount)
        return offer_id

    @rule(offer_id=offer_ids, who=ACTOR, amount=st.integers(1, 50_000))
    def revise(self, offer_id: int, who: str, amount: int) -> None:
        offer = self.m_offers[offer_id]
        who = offer.provider if who == "them" else who
        expected = self.offer_own(who, offer)
        if expected is None and offer.status != PENDING:
            expected = Conflict
        data = {"price": {"amount": amount, "currency": "USD"}, "message": "revised"}
        if self.attempt(expected, lambda: offers.revise(self.user(who), offer_id, data).id):
            offer.price = amount

    @rule(offer_id=offer_ids, who=ACTOR)
    def withdraw(self, offer_id: int, who: str) -> None:
        offer = self.m_offers[offer_id]
        who = offer.provider if who == "them" else who
        expected = self.offer_own(who, offer)
        if expected is None and offer.status != PENDING:
            expected = Conflict
        if self.attempt(expected, lambda: offers.withdraw(self.user(who), offer_id).id):
            offer.status = WITHDRAWN
            need = self.m_needs[offer.need_id]
            need.offer_count = max(0, need.offer_count - 1)

    @rule(offer_id=offer_ids, who=ACTOR)
    def accept(self, offer_id: int, who: str) -> None:
        offer = self.m_offers[offer_id]
        need = self.m_needs[offer.need_id]
        who = need.customer if who == "them" else who
        expected: type[DomainError] | None = None
        if who == need.customer:
            expected = None if offer.status == PENDING else Conflict
        elif who == offer.provider:
            expected = Forbidden
        else:
            expected = NotFound
        if self.attempt(expected, lambda: lifecycle.accept(self.user(who), offer_id).id):
            assert need.status == OPEN, "the model let an offer be pending on a closed need"
            offer.status = ACCEPTED
            need.status, need.accepted = ASSIGNED, offer_id
            self.decline_pending(need, but=offer_id)

    @rule(need_id=need_ids, who=CANCELLER, reason=st.sampled_from([None, "", "plans changed"]))
    def cancel(self, need_id: int, who: str, reason: str | None) -> None:
        need = self.m_needs[need_id]
        if who == "accepted":
            who = self.m_offers[need.accepted].provider if need.accepted else need.customer
        who = need.customer if who == "them" else who
        role = self.role(who, need)
        actor = {"customer": "customer", "accepted_provider": "provider"}.get(role or "")
        expected: type[DomainError] | None = None
        if role is None:
            expected = NotFound
        elif actor is None:
            expected = Forbidden
        elif need.status == ASSIGNED and not reason:
            expected = Invalid
        elif actor not in lifecycle.TRANSITIONS.get((need.status, CANCELLED), frozenset()):
            expected = Conflict
        if self.attempt(expected, lambda: lifecycle.cancel(self.user(who), need_id, reason).id):
            need.status = CANCELLED
            need.cancelled_by, need.cancel_reason = who, reason or None
            self.decline_pending(need)

    @rule(need_id=need_ids, who=ACTOR)
    def complete(self, need_id: int, who: str) -> None:
        need = self.m_needs[need_id]
        who = need.customer if who == "them" else who
        role = self.role(who, need)
        expected: type[DomainError] | None = None
        if role is None:
            expected = NotFound
        elif role != "customer":
            expected = Forbidden
        elif need.status != ASSIGNED:
            expected = Conflict
        if self.attempt(expected, lambda: lifecycle.complete(self.user(who), need_id).id):
            need.status = COMPLETED

    @rule(need_id=need_ids, far=st.sampled_from([False, False, False, True]))
    def expire(self, need_id: int, far: bool) -> None:
        """The expiry job, run at the very moment ``need_id`` expires (which expires it and
        every open need due no later), or far in the future (which expires every open need)."""
        now = datetime.now(UTC) + timedelta(days=365) if far else self.m_needs[need_id].expires_at
        expired = self.attempt(None, lambda: lifecycle.expire_due(now))
        due = {n.id for n in self.m_needs.values() if n.status == OPEN and n.expires_at <= now}
        assert set(expired) == due
        for due_id in due:
            self.m_needs[due_id].status = EXPIRED
            self.decline_pending(self.m_needs[due_id])

    @rule(target=rating_ids, need_id=need_ids, who=ACTOR, stars=st.integers(1, 5),
          scored=st.booleans())
    def rate(self, need_id: int, who: str, stars: int, scored: bool) -> Any:
        need = self.m_needs[need_id]
        who = need.customer if who == "them" else who
        accepted = self.m_offers[need.accepted].provider if need.accepted else None
        expected: type[DomainError] | None = None
        if who != need.customer:
            expected = Forbidden if who == accepted else NotFound
        elif need.status != COMPLETED or need.rating is not None:
            expected = Conflict
        data: dict[str, Any] = {"stars": stars, "comment": "thanks"}
        if scored:
            data["scores"] = {"quality": stars, "punctuality": 5, "communication": 1}
        rating_id = self.attempt(expected,
                                 lambda: lifecycle.rate(self.user(who), need_id, data).id)
        if rating_id is None:
            return multiple()
        assert accepted is not None
        need.rating = rating_id
        self.m_ratings[rating_id] = MRating(rating_id, need_id, accepted, stars)
        return rating_id

    @rule(rating_id=rating_ids, who=ACTOR)
    def reply(self, rating_id: int, who: str) -> None:
        rating = self.m_ratings[rating_id]
        who = rating.provider if who == "them" else who
        expected: type[DomainError] | None = None
        if who != rating.provider:
            expected = Forbidden
        elif rating.replied:
            expected = Conflict
        if self.attempt(expected, lambda: ratings.reply(self.user(who), rating_id, "Thanks!").id):
            rating.replied = True

    # -- directed rules: the happy path, so that deep states (rated, replied) come up often --

    def pending(self) -> list[int]:
        return sorted(o.id for o in self.m_offers.values() if o.status == PENDING)

    def in_status(self, status: NeedStatus) -> list[int]:
        return sorted(n.id for n in self.m_needs.values() if n.status == status)

    @precondition(lambda self: self.pending())
    @rule(data=st.data())
    def customer_accepts_a_pending_offer(self, data: st.DataObject) -> None:
        self.accept(data.draw(st.sampled_from(self.pending()), label="offer_id"), "them")

    @precondition(lambda self: self.in_status(ASSIGNED))
    @rule(data=st.data())
    def customer_completes_an_assigned_need(self, data: st.DataObject) -> None:
        self.complete(data.draw(st.sampled_from(self.in_status(ASSIGNED)), label="need_id"),
                      "them")

    @precondition(lambda self: self.in_status(ASSIGNED))
    @rule(data=st.data(), who=st.sampled_from(["them", "accepted"]),
          reason=st.sampled_from([None, "plans changed"]))
    def someone_cancels_an_assigned_need(self, data: st.DataObject, who: str,
                                         reason: str | None) -> None:
        need_id = data.draw(st.sampled_from(self.in_status(ASSIGNED)), label="need_id")
        self.cancel(need_id, who, reason)

    def hired(self) -> list[int]:
        """Needs with an accepted offer and no rating: completed, assigned or cancelled."""
        return sorted(n.id for n in self.m_needs.values()
                      if n.accepted is not None and n.rating is None)

    @precondition(lambda self: self.hired())
    @rule(target=rating_ids, data=st.data(), stars=st.integers(1, 5))
    def customer_rates_a_hire(self, data: st.DataObject, stars: int) -> Any:
        """Succeeds only once the job is completed."""
        need_id = data.draw(st.sampled_from(self.hired()), label="need_id")
        return self.rate(need_id, "them", stars, False)

    # -- invariants, against what is committed ---------------------------------------------------

    @invariant()
    def database_holds_the_rules(self) -> None:
        with db.engine.connect() as conn:
            need_rows = conn.execute(select(
                Need.id, Need.status, Need.accepted_offer_id, Need.offer_count, Need.max_offers,
                Need.customer_id, Need.cancelled_by_id, Need.cancel_reason)).all()
            offer_rows = conn.execute(select(
                Offer.id, Offer.need_id, Offer.provider_id, Offer.status, Offer.price_amount)).all()
            rating_rows = conn.execute(select(
                Rating.id, Rating.need_id, Rating.provider_id, Rating.customer_id, Rating.stars,
                Rating.reply)).all()

        offers_of: dict[int, list[Any]] = {row.id: [] for row in need_rows}
        for o in offer_rows:
            offers_of[o.need_id].append(o)
        offer_by_id = {o.id: o for o in offer_rows}
        ratings_per_need = Counter(r.need_id for r in rating_rows)
        need_by_id = {n.id: n for n in need_rows}

        for n in need_rows:
            mine = offers_of[n.id]
            accepted = [o for o in mine if o.status == ACCEPTED]
            assert len(accepted) <= 1, f"need {n.id} has {len(accepted)} accepted offers"
            if accepted:
                assert n.accepted_offer_id == accepted[0].id, f"need {n.id}"
            else:
                assert n.accepted_offer_id is None, f"need {n.id} points at a non-accepted offer"
            if n.status in (ASSIGNED, COMPLETED):
                assert len(accepted) == 1, f"{n.status.value} need {n.id} has no accepted offer"
            if n.status in (OPEN, EXPIRED):
                assert not accepted, f"{n.status.value} need {n.id} has an accepted offer"
            if n.status != OPEN:
                assert all(o.status != PENDING for o in mine), \
                    f"{n.status.value} need {n.id} still has pending offers"
            not_withdrawn = sum(o.status != WITHDRAWN for o in mine)
            assert n.offer_count == not_withdrawn, \
                f"need {n.id}: offer_count {n.offer_count}, offers not withdrawn {not_withdrawn}"
            assert n.offer_count <= (n.max_offers or HARD_CAP)
            assert ratings_per_need[n.id] <= 1

            before = self.seen_need_status.get(n.id, OPEN)
            assert n.status == before or (before, n.status) in lifecycle.TRANSITIONS, \
                f"need {n.id} went {before.value} -> {n.status.value}"
            self.seen_need_status[n.id] = n.status

        for o in offer_rows:
            before_offer = self.seen_offer_status.get(o.id, PENDING)
            assert before_offer == PENDING or o.status == before_offer, \
                f"offer {o.id} went {before_offer.value} -> {o.status.value}"
            self.seen_offer_status[o.id] = o.status

        for r in rating_rows:
            n = need_by_id[r.need_id]
            assert n.status == COMPLETED, f"rating {r.id} on a {n.status.value} need"
            assert n.accepted_offer_id is not None
            assert r.provider_id == offer_by_id[n.accepted_offer_id].provider_id
            assert r.customer_id == n.customer_id

        # ... and the database is what the model says it should be.
        assert {n.id for n in need_rows} == set(self.m_needs)
        for n in need_rows:
            m = self.m_needs[n.id]
            assert (n.status, n.accepted_offer_id, n.offer_count, n.max_offers) == \
                (m.status, m.accepted, m.offer_count, m.max_offers), f"need {n.id}"
            assert self.by_user_id[n.customer_id] == m.customer
            assert n.cancel_reason == m.cancel_reason
            assert (self.by_user_id[n.cancelled_by_id] if n.cancelled_by_id else None) == \
                m.cancelled_by
        assert {o.id for o in offer_rows} == set(self.m_offers)
        for o in offer_rows:
            m_offer = self.m_offers[o.id]
            assert (o.need_id, self.by_provider_id[o.provider_id], o.status, o.price_amount) == \
                (m_offer.need_id, m_offer.provider, m_offer.status, m_offer.price), f"offer {o.id}"
        assert {r.id for r in rating_rows} == set(self.m_ratings)
        for r in rating_rows:
            m_rating = self.m_ratings[r.id]
            assert (r.need_id, self.by_provider_id[r.provider_id], r.stars, r.reply is not None) \
                == (m_rating.need_id, m_rating.provider, m_rating.stars, m_rating.replied)


def test_need_offer_rating_lifecycle(app: Flask) -> None:
    run_state_machine_as_test(lambda: Lifecycle(app), settings=MACHINE_SETTINGS)


def test_the_machine_reaches_every_state(app: Flask) -> None:
    """A fixed walk through the machine: every need status, every offer status, a rating with a
    reply, and refusals of each kind — so the invariants above are known to meet each
    situation at least once."""
    machine = Lifecycle(app)
    needs_seen: set[NeedStatus] = set()
    offers_seen: set[OfferStatus] = set()

    def step(result: Any = None) -> Any:
        machine.database_holds_the_rules()
        needs_seen.update(machine.seen_need_status.values())
        offers_seen.update(machine.seen_offer_status.values())
        return result

    try:
        step()
        done = step(machine.post_need("ann", None, 48))
        first = step(machine.make_offer(done, "cal", 30000))
        second = step(machine.make_offer(done, "bea", None))
        third = step(machine.make_offer(done, "dan", 35000))
        step(machine.make_offer(done, "ann", None))  # not a provider
        step(machine.revise(first, "cal", 29000))
        step(machine.revise(first, "dan", 1))  # not theirs
        step(machine.withdraw(third, "dan"))
        step(machine.accept(third, "ann"))  # withdrawn
        step(machine.accept(first, "cal"))  # only the customer accepts
        step(machine.accept(first, "ann"))
        step(machine.rate(done, "ann", 5, False))  # not completed yet
        step(machine.complete(done, "cal"))  # only the customer completes
        step(machine.complete(done, "ann"))
        rating = step(machine.rate(done, "ann", 4, True))
        step(machine.rate(done, "ann", 4, True))  # once
        step(machine.reply(rating, "cal"))
        step(machine.reply(rating, "cal"))  # once
        dropped = step(machine.post_need("bea", 1, 48))
        step(machine.make_offer(dropped, "bea", None))  # her own need
        taken = step(machine.make_offer(dropped, "dan", None))
        step(machine.make_offer(dropped, "cal", None))  # over the cap
        step(machine.accept(taken, "bea"))
        step(machine.cancel(dropped, "dan", None))  # a reason is required once assigned
        step(machine.cancel(dropped, "dan", "fell ill"))
        late = step(machine.post_need("ann", None, 24 * 20))
        step(machine.expire(step(machine.post_need("ann", None, 1)), False))
        step(machine.cancel(step(machine.post_need("bea", 2, 48)), "bea", None))
        step(machine.expire(late, True))
        assert needs_seen == set(NeedStatus)
        assert offers_seen == set(OfferStatus)
        assert [m.replied for m in machine.m_ratings.values()] == [True]
        assert machine.m_offers[second].status == DECLINED
        assert machine.m_needs[dropped].cancelled_by == "dan"
    finally:
        machine.teardown()
