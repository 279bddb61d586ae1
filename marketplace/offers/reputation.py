"""A provider's reputation: what customers' ratings and the provider's jobs add up to, shown
beside every offer and on the public profile. It reads ratings and the offers that became
jobs, so it lives with offers (ratings sit below them).

Score = Bayesian average: (C*m + sum of stars) / (C + n), where m is the platform-wide mean
and C (``RATING_PRIOR_WEIGHT``, default 5) is how many "average" ratings every provider starts
with. A newcomer with one 5-star rating scores near the platform mean instead of at the top;
the score approaches the plain mean as ratings accumulate.
"""

from __future__ import annotations

import functools
import math
from collections import defaultdict
from collections.abc import Iterable
from time import monotonic
from typing import Any, NamedTuple

from flask import current_app
from sqlalchemy import and_, bindparam, func, literal_column, or_, select, union_all

from marketplace.accounts.models import User
from marketplace.extensions import db, rows
from marketplace.needs.models import Need, NeedStatus
from marketplace.offers.models import Offer
from marketplace.ratings.models import SUB_SCORES, Rating, near_tile
from marketplace.signals.services import bucket

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
    """The mean of every rating that counts on the platform: the prior of every score. Reading
    it goes through every rating, and every offer shown asks for it, while one more rating
    among thousands barely moves it: each process keeps the value it read for
    ``RATING_MEAN_SECONDS`` (60; 0 reads it every time)."""
    kept = current_app.extensions.get("platform_mean")
    now = monotonic()
    if kept is not None and now < kept[1]:
        return kept[0]
    mean = db.session.scalar(_statements().mean)
    value = float(mean) if mean is not None else DEFAULT_PLATFORM_MEAN
    keep = float(current_app.config["RATING_MEAN_SECONDS"])
    if keep > 0:
        current_app.extensions["platform_mean"] = (value, now + keep)
    return value


class _Statements(NamedTuple):
    mean: Any
    histogram: Any
    jobs: Any


@functools.cache
def _statements() -> _Statements:
    """``for_providers``' three statements, built once per process with the providers as an
    expanding bound list: building them afresh took ~0.5 ms of CPU per call (timeit), and a
    reused statement's cache key is memoized."""
    ids = bindparam("ids", expanding=True)
    # the histogram and the sub-scores' sums in one statement: per provider and star count,
    # how many ratings, and each sub-score's sum and how many gave it
    parts = [f(getattr(Rating, n)) for n in SUB_SCORES for f in (func.sum, func.count)]
    histogram = (select(Rating.provider_id, Rating.stars, func.count(), *parts)
                 .where(Rating.provider_id.in_(ids), counted())
                 .group_by(Rating.provider_id, Rating.stars))
    dropped = Need.cancelled_by_id != Need.customer_id
    jobs = (select(Offer.provider_id, Need.status, dropped, func.count())
            .join(Need, and_(Need.accepted_offer_id == Offer.id, Offer.provider_id.in_(ids)))
            .where(Need.status.in_([NeedStatus.COMPLETED, NeedStatus.CANCELLED]))
            .group_by(Offer.provider_id, Need.status, dropped))
    return _Statements(select(func.avg(Rating.stars)).where(counted()), histogram, jobs)


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
    sums: dict[int, list[int]] = {i: [0] * (2 * len(SUB_SCORES)) for i in ids}
    statements = _statements()
    for pid, stars, n, *given in rows(statements.histogram, {"ids": ids}):
        hist[pid][str(stars)] = n
        totals = sums[pid]
        for k, value in enumerate(given):
            totals[k] += int(value or 0)
    subs = {pid: {name: (round(totals[2 * k] / totals[2 * k + 1], 2) if totals[2 * k + 1]
                         else None) for k, name in enumerate(SUB_SCORES)}
            for pid, totals in sums.items()}
    jobs: dict[int, dict[str, int]] = {i: {"completed": 0, "dropped": 0} for i in ids}
    for pid, status, cancelled_by_provider, n in rows(statements.jobs, {"ids": ids}):
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
            "sub_scores": subs[pid],
            "completed_jobs": done,
            "completion_rate": round(done / (done + dropped), 3) if done + dropped else None,
            "is_new": count < NEW_BELOW,
        }
    return result


# People like you ------------------------------------------------------------------------------
#
# Beside the crowd's score, what two groups of customers thought of a provider (docs/api.md,
# "People like you"): those whose ratings agree with the viewer's, and those whose rated job was
# near the viewer. Both groups for every provider of a page come from one statement.

MIN_IN_COMMON = 2  # providers both rated, at the least, for two customers to be compared
MAX_MEAN_GAP = 1.0  # stars apart on average over them, at the most, to agree
AGREEING, NEARBY = "agreeing", "nearby"


def like_you_counted() -> Any:
    """The customers whose ratings count toward a group: confirmed, not suspended, not erased
    (an erased customer's ratings have no customer; they count for the crowd only)."""
    return and_(User.verified_at.is_not(None), User.suspended_at.is_(None),
                User.erased_at.is_(None))


def near_tiles(lat: float, lon: float) -> tuple[int, int, int, int]:
    """(first row, last row, first column, last column) of the 3 x 3 fixed tiles around the
    tile of (lat, lon) (``ratings.models.near_tile``): a place moved within its tile names the
    same tiles, so two places give the same group or groups that differ by whole tiles of
    people."""
    row, col = near_tile(lat, lon)
    return row - 1, row + 1, col - 1, col + 1


# The statement's parts: the viewer, the providers (an expanding list) and the 3 x 3 tiles near
# the place are bound parameters, so each of the two statements ``like_you`` runs is built once
# per process (``_like_you_statement``); building this one afresh took ~1 ms of CPU per call,
# more than running it (docs/performance.md).
_VIEWER = bindparam("viewer")
_IDS = bindparam("ids", expanding=True)
_TILE_NAMES = ("first_row", "last_row", "first_col", "last_col")
_TILES = tuple(bindparam(name) for name in _TILE_NAMES)


def _agreeing_rows() -> Any:
    shown = Rating.hidden_at.is_(None)
    mine = (select(Rating.provider_id, func.avg(Rating.stars).label("stars"))
            .where(Rating.customer_id == _VIEWER, shown)
            .group_by(Rating.provider_id).cte("mine"))
    theirs = (select(Rating.customer_id, Rating.provider_id,
                     func.avg(Rating.stars).label("stars"))
              .join(mine, mine.c.provider_id == Rating.provider_id)
              .where(Rating.customer_id != _VIEWER, shown)
              .group_by(Rating.customer_id, Rating.provider_id).cte("theirs"))
    # Whose ratings count is asked once per candidate, not once per rating.
    peers = (select(theirs.c.customer_id)
             .join(mine, mine.c.provider_id == theirs.c.provider_id)
             .join(User, User.id == theirs.c.customer_id)
             .where(like_you_counted())
             .group_by(theirs.c.customer_id)
             .having(func.count() >= MIN_IN_COMMON,
                     func.avg(func.abs(theirs.c.stars - mine.c.stars)) <= MAX_MEAN_GAP)
             .cte("peers"))
    return (select(literal_column(f"'{AGREEING}'").label("grp"), Rating.provider_id,
                   Rating.customer_id, Rating.stars, Rating.id)
            .join(peers, peers.c.customer_id == Rating.customer_id)
            .where(Rating.provider_id.in_(_IDS), shown))


def _nearby_rows() -> Any:
    first_row, last_row, first_col, last_col = _TILES
    return (select(literal_column(f"'{NEARBY}'").label("grp"), Rating.provider_id,
                   Rating.customer_id, Rating.stars, Rating.id)
            .join(User, User.id == Rating.customer_id)
            .where(Rating.provider_id.in_(_IDS), Rating.customer_id != _VIEWER,
                   Rating.hidden_at.is_(None), like_you_counted(),
                   Rating.near_row.between(first_row, last_row),
                   Rating.near_col.between(first_col, last_col)))


@functools.cache
def _like_you_statement(near: bool) -> Any:
    """Both groups' rows (``near``), or only the agreeing group's (no place to be near)."""
    return union_all(_agreeing_rows(), _nearby_rows()) if near else _agreeing_rows()


def half_star(value: float) -> float:
    return math.floor(value * 2 + 0.5) / 2


def _group(verdicts: list[int], k: int) -> dict[str, Any] | None:
    """A group's score, or None below the k floor. ``verdicts`` are the group's customers'
    first ratings of the provider, oldest first; the score is the half-star-rounded mean of
    the oldest ``bucket(n)`` of them and the count is that bucket, so one more rating changes
    nothing until the group crosses a bucket edge (3, 5, 10, 20, 50, 100, 200, 500, ...)."""
    n = len(verdicts)
    shown = bucket(n, k)
    if not shown:
        return None
    window = verdicts[:shown]
    return {"score": half_star(sum(window) / len(window)), "customers": shown}


def like_you(viewer_id: int | None, provider_ids: Iterable[int],
             place: tuple[float, float] | None) -> dict[int, dict[str, Any] | None]:
    """For each provider, the scores from customers like ``viewer_id`` (None: signed out, then
    every provider's is None) -- in one statement for all of them."""
    ids = sorted(set(provider_ids))
    if viewer_id is None:
        return {i: None for i in ids}
    k = current_app.config["LIKE_YOU_MIN_CUSTOMERS"]
    params: dict[str, Any] = {"viewer": viewer_id, "ids": ids}
    if place is not None:
        params.update(zip(_TILE_NAMES, near_tiles(*place), strict=True))
    stmt = _like_you_statement(place is not None)
    first: dict[tuple[str, int], dict[int, tuple[int, int]]] = defaultdict(dict)
    for grp, pid, cid, stars, rid in rows(stmt, params) if ids else ():
        seen = first[(grp, pid)].get(cid)
        if seen is None or rid < seen[0]:
            first[(grp, pid)][cid] = (rid, stars)
    result: dict[int, dict[str, Any] | None] = {}
    for pid in ids:
        groups = {}
        for grp in (AGREEING, NEARBY):
            verdicts = [s for _r, s in sorted(first.get((grp, pid), {}).values())]
            groups[grp] = _group(verdicts, k)
        result[pid] = {"min_customers": k, **groups}
    return result



def viewer_place(viewer_id: int) -> tuple[float, float] | None:
    """Where "near you" is, off a need page: the point of the viewer's latest need."""
    row = db.session.execute(
        select(Need.lat, Need.lon).where(Need.customer_id == viewer_id)
        .order_by(Need.id.desc()).limit(1)).first()
    return (row[0], row[1]) if row is not None else None


def like_you_on_profile(viewer_id: int | None, provider_id: int) -> dict[str, Any] | None:
    """The "people like you" scores of one provider for a profile page (signed out: None)."""
    if viewer_id is None:
        return None
    return like_you(viewer_id, [provider_id], viewer_place(viewer_id))[provider_id]
