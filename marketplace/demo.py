"""A living demo city (Austin, TX): customers, providers across categories, open needs with
offers in flight, and finished jobs with ratings. Everything goes through the services, so the
demo obeys the same rules as real use."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from sqlalchemy import func, select

from marketplace import lifecycle
from marketplace.accounts import services as accounts
from marketplace.accounts.models import User
from marketplace.db_types import utcnow
from marketplace.extensions import db
from marketplace.needs import services as needs
from marketplace.needs.models import Need, NeedStatus
from marketplace.offers import services as offers
from marketplace.providers import services as providers
from marketplace.ratings import services as ratings

PASSWORD = "demo-password"
CENTRE = (30.2672, -97.7431)

CUSTOMERS = [
    ("alice@demo.test", "Alice Moreno", "+1 512 555 0101"),
    ("ben@demo.test", "Ben Carter", "+1 512 555 0102"),
    ("chloe@demo.test", "Chloe Nguyen", None),
]

# email, name, handle, display name, categories, (dlat, dlon) from the centre, radius km, bio
PROVIDERS = [
    ("dana@demo.test", "Dana Ortiz", "dana-cooks", "Dana Cooks", ["catering", "events"],
     (0.02, -0.03), 30, "Tex-Mex and vegetarian buffets for 10-200 guests."),
    ("eli@demo.test", "Eli Brooks", "eli-fixes", "Eli Fixes Things", ["handyman", "plumbing",
     "electrical"], (-0.04, 0.01), 20, "Licensed plumber, general repairs, same-day visits."),
    ("fatima@demo.test", "Fatima Khan", "sparkle-clean", "Sparkle Clean", ["cleaning"],
     (0.05, 0.04), 15, "Deep cleans, move-out cleans, eco products."),
    ("gus@demo.test", "Gus Lindqvist", "gus-moves", "Gus Moves", ["moving"], (-0.08, -0.06), 40,
     "Two movers and a 20 ft truck."),
    ("hana@demo.test", "Hana Sato", "hana-tutors", "Hana Tutors", ["tutoring"], (0.01, 0.02), 10,
     "Maths and physics, middle school to university."),
    ("ivan@demo.test", "Ivan Petrov", "ivan-catering", "Ivan's Kitchen", ["catering"],
     (-0.03, 0.05), 25, "Eastern European comfort food, corporate lunches."),
]

LOGINS = [(c[0], "customer") for c in CUSTOMERS] + [(p[0], f"provider @{p[2]}") for p in PROVIDERS]


def _user(email: str, name: str, phone: str | None = None) -> User:
    return accounts.register(email, PASSWORD, name, phone, verified=True)


def _post(customer: User, title: str, category: str, amount: int, dlat: float, dlon: float,
          description: str = "", days: int = 3, radius: float = 25) -> Any:
    return needs.create(customer, {
        "title": title, "description": description, "category": category,
        "location": {"lat": CENTRE[0] + dlat, "lon": CENTRE[1] + dlon},
        "radius_km": radius, "budget": {"amount": amount, "currency": "USD"},
        "needed_by": utcnow() + timedelta(days=days),
        "address": f"{100 + int(abs(dlat) * 1000)} Demo Street, Austin, TX",
    })


def _offer(email: str, need: Any, amount: int, message: str) -> Any:
    provider = accounts.find_by_email(email)
    assert provider is not None
    return offers.make(provider, need.id, {
        "price": {"amount": amount, "currency": "USD"}, "message": message})


def _open_needs(alice: User, ben: User, chloe: User) -> None:
    """Needs with offers in flight: what a newcomer sees first."""
    party = _post(alice, "Catering for 20 on Saturday", "catering", 40000, 0.0, 0.0,
                  "Vegetarian-friendly buffet, drinks not needed.")
    _offer("dana@demo.test", party, 38000, "Vegetarian Tex-Mex buffet, setup included.")
    _offer("ivan@demo.test", party, 42000, "Three-course family style, vegan options.")
    tap = _post(ben, "Bathroom light flickers", "electrical", 9000, -0.02, 0.02)
    _offer("eli@demo.test", tap, 8500, "Can come tomorrow morning.")
    _post(chloe, "Algebra tutor for my son", "tutoring", 4000, 0.015, 0.01,
          "Two one-hour sessions a week.", days=7)
    _post(alice, "Deep clean before guests", "cleaning", 18000, 0.03, 0.03)


def seed() -> str:
    """Create the demo city once ("seeded"); later, post fresh open needs when the old ones
    have expired ("refreshed"); otherwise leave it be ("present")."""
    existing = [accounts.find_by_email(c[0]) for c in CUSTOMERS]
    if all(existing):
        ids = [u.id for u in existing if u is not None]
        open_count = db.session.scalar(select(func.count()).where(
            Need.customer_id.in_(ids), Need.status == NeedStatus.OPEN,
            Need.expires_at > utcnow())) or 0
        if open_count:
            return "present"
        lifecycle.expire_due()
        _open_needs(*existing)  # type: ignore[arg-type]
        return "refreshed"
    customers = [_user(*c) for c in CUSTOMERS]
    for email, name, handle, display, cats, (dlat, dlon), radius, bio in PROVIDERS:
        user = _user(email, name)
        providers.save_profile(user, {
            "handle": handle, "display_name": display, "bio": bio, "categories": cats,
            "base": {"lat": CENTRE[0] + dlat, "lon": CENTRE[1] + dlon}, "radius_km": radius,
            "active": True,
        })
    alice, ben, chloe = customers
    # Finished jobs with ratings: reputations worth looking at.
    history = [
        (alice, "Birthday buffet for 30", "catering", 60000, "dana", 55000, 5, "Delicious."),
        (ben, "Office lunch for 15", "catering", 30000, "dana", 29000, 4, "Good, a bit late."),
        (chloe, "Leaky kitchen tap", "plumbing", 15000, "eli", 12000, 5, "Fast and tidy."),
        (alice, "Move-out clean, 2 bed flat", "cleaning", 25000, "fatima", 24000, 5, ""),
        (ben, "Move a sofa across town", "moving", 12000, "gus", 12000, 3, "Scuffed a wall."),
        (chloe, "Wedding rehearsal dinner", "catering", 120000, "ivan", 110000, 4, "Nice."),
    ]
    for customer, title, cat, budget, who, price, stars, comment in history:
        need = _post(customer, title, cat, budget, 0.01, -0.01, days=1)
        accepted = _offer(f"{who}@demo.test", need, price, "Happy to do it.")
        lifecycle.accept(customer, accepted.id)
        lifecycle.complete(customer, need.id)
        rating = lifecycle.rate(customer, need.id, {
            "stars": stars, "comment": comment,
            "scores": {"quality": stars, "punctuality": max(1, stars - 1), "communication": stars}})
        if stars <= 3:
            provider_user = accounts.find_by_email(f"{who}@demo.test")
            assert provider_user is not None
            ratings.reply(provider_user, rating.id,
                          "Sorry about that — we have fixed our process.")
    _open_needs(alice, ben, chloe)
    return "seeded"
