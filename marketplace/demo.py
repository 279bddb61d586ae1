"""A living demo city (Austin, TX): customers, providers across categories, open needs with
offers in flight, and finished jobs with ratings. Everything goes through the services, so the
demo obeys the same rules as real use."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from marketplace.accounts import services as accounts
from marketplace.accounts.models import User
from marketplace.db_types import utcnow
from marketplace.needs import services as needs
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
    return accounts.register(email, PASSWORD, name, phone)


def seed() -> bool:
    """Create the demo city once; returns False if it is already there."""
    if accounts.find_by_email(CUSTOMERS[0][0]) is not None:
        return False
    customers = [_user(*c) for c in CUSTOMERS]
    pros: dict[str, Any] = {}
    for email, name, handle, display, cats, (dlat, dlon), radius, bio in PROVIDERS:
        user = _user(email, name)
        providers.save_profile(user, {
            "handle": handle, "display_name": display, "bio": bio, "categories": cats,
            "base": {"lat": CENTRE[0] + dlat, "lon": CENTRE[1] + dlon}, "radius_km": radius,
            "active": True,
        })
        pros[handle] = user

    def post(customer: User, title: str, category: str, amount: int, dlat: float, dlon: float,
             description: str = "", days: int = 3, radius: float = 25) -> Any:
        return needs.create(customer, {
            "title": title, "description": description, "category": category,
            "location": {"lat": CENTRE[0] + dlat, "lon": CENTRE[1] + dlon},
            "radius_km": radius, "budget": {"amount": amount, "currency": "USD"},
            "needed_by": utcnow() + timedelta(days=days),
            "address": f"{100 + int(abs(dlat) * 1000)} Demo Street, Austin, TX",
        })

    def offer(handle: str, need: Any, amount: int, message: str) -> Any:
        return offers.make(pros[handle], need.id, {
            "price": {"amount": amount, "currency": "USD"}, "message": message})

    alice, ben, chloe = customers
    # Finished jobs with ratings: reputations worth looking at.
    history = [
        (alice, "Birthday buffet for 30", "catering", 60000, "dana-cooks", 55000, 5, "Delicious."),
        (ben, "Office lunch for 15", "catering", 30000, "dana-cooks", 29000, 4, "Good, a bit late."),
        (chloe, "Leaky kitchen tap", "plumbing", 15000, "eli-fixes", 12000, 5, "Fast and tidy."),
        (alice, "Move-out clean, 2 bed flat", "cleaning", 25000, "sparkle-clean", 24000, 5, ""),
        (ben, "Move a sofa across town", "moving", 12000, "gus-moves", 12000, 3, "Scuffed a wall."),
        (chloe, "Wedding rehearsal dinner", "catering", 120000, "ivan-catering", 110000, 4, "Nice."),
    ]
    for customer, title, cat, budget, handle, price, stars, comment in history:
        need = post(customer, title, cat, budget, 0.01, -0.01, days=1)
        accepted = offer(handle, need, price, "Happy to do it.")
        offers.accept(customer, accepted.id)
        needs.complete(customer, need.id)
        rating = ratings.rate(customer, need.id, {
            "stars": stars, "comment": comment,
            "scores": {"quality": stars, "punctuality": max(1, stars - 1), "communication": stars}})
        if stars <= 3:
            ratings.reply(pros[handle], rating.id, "Sorry about that — we have fixed our process.")
    # Open needs with offers in flight.
    party = post(alice, "Catering for 20 on Saturday", "catering", 40000, 0.0, 0.0,
                 "Vegetarian-friendly buffet, drinks not needed.")
    offer("dana-cooks", party, 38000, "Vegetarian Tex-Mex buffet, setup included.")
    offer("ivan-catering", party, 42000, "Three-course family style, vegan options.")
    tap = post(ben, "Bathroom light flickers", "electrical", 9000, -0.02, 0.02)
    offer("eli-fixes", tap, 8500, "Can come tomorrow morning.")
    post(chloe, "Algebra tutor for my son", "tutoring", 4000, 0.015, 0.01,
         "Two one-hour sessions a week.", days=7)
    post(alice, "Deep clean before guests", "cleaning", 18000, 0.03, 0.03)
    return True
