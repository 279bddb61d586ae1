"""The living demo: seeded once through the services, refreshed when its open needs expire."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from sqlalchemy import func, select, update

from marketplace import demo
from marketplace.db_types import utcnow
from marketplace.extensions import db
from marketplace.needs.models import Need, NeedStatus
from marketplace.offers.models import Offer
from marketplace.ratings.models import Rating


def count(model: Any, *where: Any) -> int:
    return db.session.scalar(select(func.count()).select_from(model).where(*where)) or 0


def test_seed_once_then_refresh_expired_open_needs(app: Any) -> None:
    assert demo.seed() == "seeded"
    assert count(Rating) == 6 and count(Offer) >= 9
    assert count(Need, Need.status == NeedStatus.OPEN) == 4
    assert demo.seed() == "present"
    assert count(Need) == 10
    db.session.execute(update(Need).where(Need.status == NeedStatus.OPEN)
                       .values(expires_at=utcnow() - timedelta(minutes=1)))
    db.session.commit()
    assert demo.seed() == "refreshed"
    assert count(Need, Need.status == NeedStatus.OPEN) == 4
    assert count(Need, Need.status == NeedStatus.EXPIRED) == 4
