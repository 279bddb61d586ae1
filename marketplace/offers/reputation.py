"""A provider's reputation: what customers' ratings and the provider's jobs add up to, shown
beside every offer and on the public profile. It reads ratings and the offers that became
jobs, so it lives with offers (ratings sit below them).

Score = Bayesian average: (C*m + sum of stars) / (C + n), where m is the platform-wide mean
and C (``RATING_PRIOR_WEIGHT``, default 5) is how many "average" ratings every provider starts
with. A newcomer with one 5-star rating scores near the platform mean instead of at the top;
the score approaches the plain mean as ratings accumulate.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from flask import current_app
from sqlalchemy import and_, func, or_, select

from marketplace.accounts.models import User
from marketplace.extensions import db
from marketplace.needs.models import Need, NeedStatus
from marketplace.offers.models import Offer
from marketplace.ratings.models import SUB_SCORES, Rating

DEFAULT_PLATFORM_MEAN = 4.0  # used until the platform has any ratings at all

NEW_BELOW = 3  # providers with fewer ratings are labelled "new"


def counted() -> Any:
    """The ratings that count: those whose customer confirmed their address (a rating whose
    customer row is gone counts, as it did). Throwaway accounts made to praise a provider do
    not move the score until someone confirms each of their addresses. A rating hidden by
    moderation does not count either."""
    return and_(Rating.hidden_at.is_(None), or_(Rating.customer_id.is_(None), Rating.customer_id.in_(
        select(User.id).where(User.verified_at.is_not(None)))))


def platform_mean() -> float:
    mean = db.session.scalar(select(func.avg(Rating.stars)).where(counted()))
    return float(mean) if mean is not None else DEFAULT_PLATFORM_MEAN


def bayesian(count: int, total: int, prior_mean: float, prior_weight: float) -> float:
    return (prior_weight * prior_mean + total) / (prior_weight + count)


def for_providers(provider_ids: Iterable[int]) -> dict[int, dict[str, Any]]:
    """Reputation for many providers in a fixed number of queries."""
    ids = sorted(set(provider_ids))
    result: dict[int, dict[str, Any]] = {}
    if not ids:
        return result
    prior = platform_mean()
    weight = float(current_app.config["RATING_PRIOR_WEIGHT"])
    hist: dict[int, dict[str, int]] = {i: {str(s): 0 for s in range(1, 6)} for i in ids}
    for pid, stars, n in db.session.execute(
        select(Rating.provider_id, Rating.stars, func.count())
        .where(Rating.provider_id.in_(ids), counted())
        .group_by(Rating.provider_id, Rating.stars)
    ):
        hist[pid][str(stars)] = n
    subs: dict[int, dict[str, float | None]] = {}
    for row in db.session.execute(
        select(Rating.provider_id, *(func.avg(getattr(Rating, n)) for n in SUB_SCORES))
        .where(Rating.provider_id.in_(ids), counted()).group_by(Rating.provider_id)
    ):
        subs[row[0]] = {n: (round(float(v), 2) if v is not None else None)
                        for n, v in zip(SUB_SCORES, row[1:], strict=True)}
    jobs: dict[int, dict[str, int]] = {i: {"completed": 0, "dropped": 0} for i in ids}
    accepted = and_(Need.accepted_offer_id == Offer.id, Offer.provider_id.in_(ids))
    for pid, status, cancelled_by_provider, n in db.session.execute(
        select(Offer.provider_id, Need.status, Need.cancelled_by_id != Need.customer_id,
               func.count())
        .join(Need, accepted)
        .where(Need.status.in_([NeedStatus.COMPLETED, NeedStatus.CANCELLED]))
        .group_by(Offer.provider_id, Need.status, Need.cancelled_by_id != Need.customer_id)
    ):
        if status == NeedStatus.COMPLETED:
            jobs[pid]["completed"] += n
        elif cancelled_by_provider:
            jobs[pid]["dropped"] += n
    for pid in ids:
        h = hist[pid]
        count = sum(h.values())
        total = sum(int(s) * n for s, n in h.items())
        done, dropped = jobs[pid]["completed"], jobs[pid]["dropped"]
        result[pid] = {
            "count": count,
            "mean": round(total / count, 2) if count else None,
            "score": round(bayesian(count, total, prior, weight), 3),
            "histogram": h,
            "sub_scores": subs.get(pid, {n: None for n in SUB_SCORES}),
            "completed_jobs": done,
            "completion_rate": round(done / (done + dropped), 3) if done + dropped else None,
            "is_new": count < NEW_BELOW,
        }
    return result
