"""GET /api/v1/me/export (and the account page's download) holds exactly the rows the database
holds about the caller, table by table — decided here from the foreign keys alone, not from the
exporter's own sections, so a table added later without a section fails."""

from __future__ import annotations

import json
from typing import Any

import pytest
from conftest import Person, need_data
from sqlalchemy import Column, ForeignKey, Integer, Table, select

from marketplace import lifecycle, privacy
from marketplace.extensions import db
from marketplace.messages import services as messages
from marketplace.ratings import services as ratings

# The rows everything else about a person hangs from: the person, their provider profile,
# the needs they posted, the offers they made or received. A row of any other table is about
# the person when one of its foreign keys points at one of those rows, or at a row of another
# table that is about them (followed until nothing new is found).
ROOTS = ("users", "providers", "needs", "offers")


def _pk(table: Table, row: Any) -> tuple[Any, ...]:
    return tuple(row[c.name] for c in table.primary_key.columns)


def tied_tables() -> set[str]:
    """Tables whose foreign keys lead (directly or through each other) to a person."""
    tied = set(ROOTS)
    changed = True
    while changed:
        changed = False
        for table in db.metadata.sorted_tables:
            if table.name not in tied and any(fk.column.table.name in tied
                                              for fk in table.foreign_keys):
                tied.add(table.name)
                changed = True
    return tied


def about(user_id: int) -> dict[str, set[tuple[Any, ...]]]:
    """table -> primary keys of its rows about ``user_id``, for every tied table."""
    with db.engine.connect() as conn:
        rows = {t.name: list(conn.execute(select(t)).mappings()) for t in db.metadata.sorted_tables}
    pids = {r["id"] for r in rows["providers"] if r["user_id"] == user_id}
    nids = {r["id"] for r in rows["needs"] if r["customer_id"] == user_id}
    oids = {r["id"] for r in rows["offers"] if r["provider_id"] in pids or r["need_id"] in nids}
    anchors: dict[str, set[Any]] = {"users": {user_id}, "providers": pids, "needs": nids,
                                    "offers": oids}
    tied = tied_tables()
    found: dict[str, set[tuple[Any, ...]]] = {name: set() for name in tied}
    found["users"] = {(user_id,)}
    changed = True
    while changed:
        changed = False
        for table in db.metadata.sorted_tables:
            if table.name not in tied:
                continue
            keys = {_pk(table, row) for row in rows[table.name]
                    if any(row[fk.parent.name] in anchors.get(fk.column.table.name, ())
                           for fk in table.foreign_keys if row[fk.parent.name] is not None)}
            keys |= found[table.name]
            if keys != found[table.name]:
                found[table.name] = keys
                changed = True
                # A row about the person anchors the rows of tables that point at it.
                if table.name not in ROOTS and len(table.primary_key.columns) == 1:
                    anchors[table.name] = {k[0] for k in keys}
    return found


def exported_keys(document: dict[str, Any]) -> dict[str, set[tuple[Any, ...]]]:
    out = {}
    for name, rows in document["tables"].items():
        table = db.metadata.tables[name]
        out[name] = {tuple(r[c.name] for c in table.primary_key.columns) for r in rows}
    return out


def withheld(user_id: int) -> dict[str, set[tuple[Any, ...]]]:
    """Rows a section withholds on purpose (someone else's act), by its own declaration."""
    who = privacy.Who.of(user_id)
    out: dict[str, set[tuple[Any, ...]]] = {}
    for section in privacy.SECTIONS:
        if section.withheld is None:
            continue
        t = db.metadata.tables[section.table]
        rows = db.session.execute(select(t).where(section.about(t, who)
                                                  & section.withheld(t, who))).mappings()
        out[section.table] = {_pk(t, r) for r in rows}
    return out


@pytest.fixture
def world(make_user: Any, make_provider: Any, make_need: Any, make_offer: Any,
          make_job: Any) -> dict[str, Person]:
    """Two customers and two providers dealing with each other in every way there is."""
    cara, dan = make_user("Cara Customer", phone="+1 512 555 0101"), make_user("Dan Other")
    pat, quinn = make_provider(make_user("Pat Pro")), make_provider(make_user("Quinn Pro"))
    rated = make_job(cara, pat, stars=5)
    ratings.reply(pat.user, rated.rating.id, "Thank you!")
    open_need = make_need(cara, title="Cake for a party")
    offer = make_offer(open_need, quinn)
    messages.send(cara.user, offer.id, "Chocolate please")
    messages.send(quinn.user, offer.id, "Sure")
    other = make_need(dan, title="Dan's dinner")
    make_offer(other, pat)
    make_job(dan, quinn, stars=3)
    lifecycle.block(dan.user, pat.provider.handle)
    make_job(cara, quinn, done=False)
    lifecycle.block(cara.user, make_provider().provider.handle)
    r = cara.post("/api/v1/needs", json=need_data(title="Posted by script"),
                  headers={"Idempotency-Key": "export-key-1"})
    assert r.status_code == 201, r.get_json()
    return {"cara": cara, "dan": dan, "pat": pat, "quinn": quinn}


def test_every_table_about_people_has_an_export_section(app: Any) -> None:
    tied = tied_tables()
    missing = tied - set(privacy.sections())
    assert not missing, (f"tables about people without a section in privacy.SECTIONS: "
                         f"{sorted(missing)}")


def test_a_new_table_about_people_without_a_section_fails(app: Any) -> None:
    """The check above is real: a table pointing at users (a note, a favourite) that nobody
    gave a section is found."""
    notes = Table("scratch_notes", db.metadata, Column("id", Integer, primary_key=True),
                  Column("user_id", ForeignKey("users.id")))
    try:
        assert "scratch_notes" in tied_tables() - set(privacy.sections())
    finally:
        db.metadata.remove(notes)
    assert "scratch_notes" not in tied_tables()


@pytest.mark.parametrize("who", ["cara", "dan", "pat", "quinn"])
def test_the_export_holds_exactly_the_rows_about_the_caller(world: dict[str, Person],
                                                            who: str) -> None:
    person = world[who]
    r = person.get("/api/v1/me/export")
    assert r.status_code == 200, r.get_json()
    document = r.get_json()
    assert document["format"] == privacy.FORMAT and document["user_id"] == person.user.id
    expected = about(person.user.id)
    held_back = withheld(person.user.id)
    got = exported_keys(document)
    for name, keys in expected.items():
        want = keys - held_back.get(name, set())
        assert got.get(name, set()) == want, (name, sorted(got.get(name, set())), sorted(want))
    assert set(got) == set(expected)


def test_the_export_never_holds_secrets(world: dict[str, Person]) -> None:
    person = world["cara"]
    document = person.get("/api/v1/me/export").get_json()
    text = json.dumps(document)
    assert person.token not in text
    for row in document["tables"]["api_tokens"]:
        assert "token_hash" not in row
    assert "password_hash" not in document["tables"]["users"][0]
    assert document["tables"]["users"][0]["phone"] == "+1 512 555 0101"
    for row in document["tables"]["idempotency_keys"]:
        assert set(row) <= {"id", "user_id", "scope", "status_code", "created_at"}


def test_the_export_has_the_exact_places(world: dict[str, Person]) -> None:
    cara = world["cara"]
    document = cara.get("/api/v1/me/export").get_json()
    needs = document["tables"]["needs"]
    assert needs and all(n["address"] == "100 Congress Ave, Austin" for n in needs
                         if n["customer_id"] == cara.user.id)
    pat = world["pat"].get("/api/v1/me/export").get_json()
    assert pat["tables"]["providers"][0]["base_lat"] == world["pat"].provider.base_lat


def test_blocks_against_a_provider_stay_out_of_their_export(world: dict[str, Person]) -> None:
    pat = world["pat"].get("/api/v1/me/export").get_json()
    assert pat["tables"]["blocks"] == []
    dan = world["dan"].get("/api/v1/me/export").get_json()
    assert [b["provider_id"] for b in dan["tables"]["blocks"]] == [world["pat"].provider.id]


def test_the_account_page_downloads_the_same_document(world: dict[str, Person], auth: Any) -> None:
    cara = world["cara"]
    browser = auth.sign_in(cara)
    page = browser.get("/account/tokens").get_data(as_text=True)
    assert 'href="/account/export"' in page
    r = browser.get("/account/export")
    assert r.status_code == 200
    assert r.headers["Content-Disposition"].startswith("attachment")
    document = json.loads(r.get_data(as_text=True))
    api = cara.get("/api/v1/me/export").get_json()
    assert exported_keys(document) == exported_keys(api)


def test_export_needs_a_sign_in(client: Any, auth: Any) -> None:
    assert client.get("/api/v1/me/export").status_code == 401
    r = auth.client().get("/account/export")
    assert r.status_code == 302 and "/signin" in r.headers["Location"]
