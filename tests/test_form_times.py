"""Wall-clock times from the web forms: read in the browser's IANA zone at the date typed
(``forms.local_datetime``), through the need and offer forms (Flask test client). The real
browser's side is in test_e2e_time.py."""

from __future__ import annotations

import zoneinfo
from datetime import UTC, datetime
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from pages import field_errors
from sqlalchemy import func, select
from test_web_needs import GOOD

from marketplace.extensions import db
from marketplace.needs.models import Need
from marketplace.offers.models import Offer
from marketplace.web.forms import local_datetime

ZONES = sorted(zoneinfo.available_timezones())
CHICAGO = "America/Chicago"
SKIPPED = "2031-03-09T02:30"  # clocks go 02:00 -> 03:00 in Chicago
REPEATED = "2031-11-02T01:30"  # clocks go 02:00 -> 01:00 in Chicago


@settings(max_examples=400, deadline=None)
@given(zone=st.sampled_from(ZONES),
       wall=st.datetimes(min_value=datetime(2000, 1, 2), max_value=datetime(2199, 12, 30)))
def test_a_wall_time_is_read_in_its_zone_at_its_own_date(zone: str, wall: datetime) -> None:
    tz = zoneinfo.ZoneInfo(zone)
    readings = {wall.replace(tzinfo=tz, fold=f).astimezone(UTC) for f in (0, 1)}
    real = sorted(r for r in readings if r.astimezone(tz).replace(tzinfo=None) == wall)
    text = wall.isoformat()
    if not real:  # the clocks skip this wall time
        with pytest.raises(ValueError, match="does not exist"):
            local_datetime(text, zone)
        return
    result = local_datetime(text, zone)
    assert result is not None and result.utcoffset() is not None and result.utcoffset().seconds == 0
    assert result.astimezone(tz).replace(tzinfo=None) == wall
    assert result == real[0]  # of a repeated hour, the first


def test_the_edges_of_a_dst_change() -> None:
    with pytest.raises(ValueError, match="02:30 on 2031-03-09 does not exist in America/Chicago"):
        local_datetime(SKIPPED, CHICAGO)
    assert local_datetime("2031-03-09T01:59", CHICAGO) == datetime(2031, 3, 9, 7, 59, tzinfo=UTC)
    assert local_datetime("2031-03-09T03:00", CHICAGO) == datetime(2031, 3, 9, 8, 0, tzinfo=UTC)
    assert local_datetime(REPEATED, CHICAGO) == datetime(2031, 11, 2, 6, 30, tzinfo=UTC)
    assert local_datetime("2031-06-14T18:30", "Asia/Calcutta") == \
        datetime(2031, 6, 14, 13, 0, tzinfo=UTC)  # the older name browsers may send


@pytest.mark.parametrize("zone", ["Mars/Olympus_Mons", "../../etc/passwd", "/etc/localtime",
                                  "Europe/Berlin\x00", "x" * 5000, "Etc/Unknown", "utc+2"])
def test_an_unknown_zone_is_refused_with_a_message(zone: str) -> None:
    with pytest.raises(ValueError, match="time zone we do not know"):
        local_datetime("2031-06-14T18:30", zone)


@pytest.mark.parametrize("text", ["0001-01-01T00:00", "9999-12-31T23:59"])
def test_a_date_beyond_the_calendar_in_utc_is_refused_with_a_message(text: str) -> None:
    for zone in ("Pacific/Kiritimati", "Pacific/Pago_Pago"):
        try:
            local_datetime(text, zone)
        except ValueError as exc:
            assert "years 2000 and 2200" in str(exc)


@pytest.mark.parametrize("text", ["tomorrow", "2031-02-30T10:00", "2031-06-14T18:30+02:00",
                                  "2031-06-14 18:30:00\x00"])
def test_anything_but_a_wall_time_is_refused(text: str) -> None:
    with pytest.raises(ValueError, match="Pick a date and time"):
        local_datetime(text, CHICAGO)


def test_without_a_zone_the_time_is_utc() -> None:
    assert local_datetime("2031-06-14T18:30", "") == datetime(2031, 6, 14, 18, 30, tzinfo=UTC)
    assert local_datetime("", CHICAGO) is None


# --- through the pages ---------------------------------------------------------------------


def _count(model: Any) -> int:
    return db.session.scalar(select(func.count()).select_from(model))


def _stored_needed_by(web: Any, **form: str) -> datetime:
    r = web.post("/needs/new", data={**GOOD, **form})
    assert r.status_code == 302, field_errors(r)
    db.session.expire_all()
    need = db.session.scalar(select(Need).order_by(Need.id.desc()))
    return need.needed_by


def test_the_need_form_reads_needed_by_in_the_browsers_zone(make_user: Any,
                                                            auth: Any) -> None:
    web = auth.sign_in(make_user())
    assert _stored_needed_by(web, needed_by="2031-06-14T18:30", tz=CHICAGO) == \
        datetime(2031, 6, 14, 23, 30, tzinfo=UTC)
    assert _stored_needed_by(web, needed_by=REPEATED, tz=CHICAGO) == \
        datetime(2031, 11, 2, 6, 30, tzinfo=UTC)
    # No zone: the page was used without JavaScript, and it says such times are read as UTC.
    assert "(read as UTC)" in web.get("/needs/new").get_data(as_text=True)
    assert _stored_needed_by(web, needed_by="2031-06-14T18:30") == \
        datetime(2031, 6, 14, 18, 30, tzinfo=UTC)


@pytest.mark.parametrize(("needed_by", "zone", "says"), [
    (SKIPPED, CHICAGO, "does not exist in America/Chicago"),
    ("2031-06-14T18:30", "Mars/Olympus_Mons", "time zone we do not know"),
    ("2031-06-14T18:30", "Europe/Berlin\x00", "time zone we do not know"),
    ("0001-01-01T00:00", "Asia/Kolkata", "years 2000 and 2200"),
    ("9999-12-31T23:59", CHICAGO, "years 2000 and 2200"),
])
def test_the_need_form_refuses_a_time_it_cannot_read(make_user: Any, auth: Any,
                                                     needed_by: str, zone: str,
                                                     says: str) -> None:
    web = auth.sign_in(make_user())
    r = web.post("/needs/new", data={**GOOD, "needed_by": needed_by, "tz": zone})
    assert r.status_code == 200
    assert says in field_errors(r).get("needed_by", ""), field_errors(r)
    assert _count(Need) == 0


def test_the_offer_form_reads_available_at_in_the_browsers_zone(
        make_need: Any, make_provider: Any, auth: Any) -> None:
    need = make_need()
    web = auth.sign_in(make_provider())
    r = web.post(f"/needs/{need.id}/offers",
                 data={"price": "380", "available_at": SKIPPED, "tz": CHICAGO})
    assert r.status_code == 200
    assert "does not exist" in field_errors(r)["offer-available_at"]
    assert _count(Offer) == 0
    r = web.post(f"/needs/{need.id}/offers",
                 data={"price": "380", "available_at": "2031-06-14T17:00", "tz": "Asia/Kolkata"})
    assert r.status_code == 302
    offer = db.session.scalar(select(Offer))
    assert offer.available_at == datetime(2031, 6, 14, 11, 30, tzinfo=UTC)
    r = web.post(f"/offers/{offer.id}/revise",
                 data={"price": "380", "message": "", "available_at": "2031-12-24T08:00",
                       "tz": "Australia/Adelaide"})
    assert r.status_code == 302
    db.session.expire_all()
    assert db.session.get(Offer, offer.id).available_at == datetime(2031, 12, 23, 21, 30, tzinfo=UTC)
