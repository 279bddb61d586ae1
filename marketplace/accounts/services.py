"""Accounts: sign-up, password checks, personal API tokens, and what is done by mail
(verifying an address, resetting a password, changing password or address).

Sign-up and password reset answer the same whether or not an account has the address: a
sign-up with a taken address mails its owner instead, a reset for an unknown address mails
nobody, and both hash a password (or not) alike, so neither the answer nor its time tells."""

from __future__ import annotations

import secrets
from collections.abc import Callable
from typing import Any, TypeVar

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from flask import current_app
from sqlalchemy import delete, func, select
from sqlalchemy.exc import IntegrityError

from marketplace import mail
from marketplace.accounts import recovery, sessions
from marketplace.accounts.auth import TOKEN_PREFIX, hash_token
from marketplace.accounts.models import ApiToken, TokenKind, User, WebSession
from marketplace.db_types import utcnow
from marketplace.errors import Conflict, Forbidden, Invalid, NotFound, Unauthorized
from marketplace.extensions import db

MAX_TOKENS_PER_USER = 50
T = TypeVar("T")
_DUMMY_HASH: str | None = None


def _hasher() -> PasswordHasher:
    """argon2id with the library's recommended parameters (cheap ones only when testing)."""
    if current_app.config.get("PASSWORD_HASH_FAST"):
        return PasswordHasher(time_cost=1, memory_cost=1024, parallelism=1)
    return PasswordHasher()


def off_the_loop(work: Callable[..., T], *args: Any) -> T:
    """Run CPU-bound ``work`` (argon2) where it cannot stall the server: under gevent, in the
    hub's thread pool -- argon2-cffi releases the GIL while it hashes, so other greenlets keep
    serving -- and inline everywhere else (tests, CLI, threading mode). PASSWORD_HASH_INLINE
    keeps it on the loop (the baseline of bench/signin.py)."""
    if (current_app.config.get("SOCKETIO_ASYNC_MODE") == "gevent"
            and not current_app.config.get("PASSWORD_HASH_INLINE")):
        import gevent

        return gevent.get_hub().threadpool.apply(work, args)
    return work(*args)


def hash_password(password: str) -> str:
    return off_the_loop(_hasher().hash, password)


def _verifies(hasher: PasswordHasher, stored: str, password: str) -> bool:
    try:
        hasher.verify(stored, password)
    except (VerificationError, InvalidHashError):
        return False
    return True


def verify_password(user: User | None, password: str) -> bool:
    """Constant-ish time whether or not the user exists, so timing does not reveal accounts."""
    global _DUMMY_HASH
    hasher = _hasher()
    if user is None:
        if _DUMMY_HASH is None:
            _DUMMY_HASH = hash_password(secrets.token_hex(8))
        off_the_loop(_verifies, hasher, _DUMMY_HASH, password)
        return False
    if not off_the_loop(_verifies, hasher, user.password_hash, password):
        return False
    if hasher.check_needs_rehash(user.password_hash):
        user.password_hash = hash_password(password)
        db.session.commit()
    return True


def find_by_email(email: str) -> User | None:
    return db.session.scalar(select(User).where(User.email == email.strip().lower()))


def register(email: str, password: str, name: str, phone: str | None = None, *,
             verified: bool = False) -> User:
    """Create the account (no mail; ``sign_up`` is what people use). ``verified``: the address
    is known good already (the demo's people, test fixtures)."""
    email = email.strip().lower()
    if find_by_email(email) is not None:
        raise Conflict("An account with that email already exists.",
                       {"email": ["An account with that email already exists."]})
    user = User(email=email, name=name, phone=phone or None, password_hash=hash_password(password),
                verified_at=utcnow() if verified else None)
    db.session.add(user)
    try:
        db.session.commit()
    except IntegrityError:
        db.session.rollback()
        raise Conflict("An account with that email already exists.",
                       {"email": ["An account with that email already exists."]}) from None
    return user


def authenticate(email: str, password: str) -> User:
    user = find_by_email(email)
    if not verify_password(user, password):
        raise Unauthorized("Email or password is wrong.")
    assert user is not None
    if user.suspended_at is not None:  # told only to whoever knows the password
        raise Forbidden("This account is suspended.")
    return user


def update_profile(user: User, changes: dict[str, object]) -> User:
    for field in ("name", "phone", "distance_unit"):
        if field in changes:
            setattr(user, field, changes[field] or (None if field != "name" else changes[field]))
    db.session.commit()
    return user


def create_token(user: User, name: str) -> tuple[ApiToken, str]:
    """Make a token; the plain value is returned once and never stored."""
    count = db.session.scalar(select(func.count()).where(ApiToken.user_id == user.id)) or 0
    if count >= MAX_TOKENS_PER_USER:
        raise Conflict(f"You already have {MAX_TOKENS_PER_USER} tokens; revoke one first.")
    raw = TOKEN_PREFIX + secrets.token_urlsafe(32)
    token = ApiToken(user_id=user.id, name=name, token_hash=hash_token(raw),
                     prefix=raw[: len(TOKEN_PREFIX) + 6])
    db.session.add(token)
    db.session.commit()
    return token, raw


def list_tokens(user: User) -> list[ApiToken]:
    return list(db.session.scalars(
        select(ApiToken).where(ApiToken.user_id == user.id).order_by(ApiToken.id.desc())
    ))


def revoke_token(user: User, token_id: int) -> None:
    """Delete the token; live connections it authenticated are cut at once."""
    sids = sessions.cut_token(token_id) if db.session.get(ApiToken, token_id) else []
    result = db.session.execute(
        delete(ApiToken).where(ApiToken.id == token_id, ApiToken.user_id == user.id)
    )
    if not result.rowcount:  # type: ignore[attr-defined]
        db.session.rollback()
        raise NotFound("You have no token with that id.")
    db.session.commit()
    sessions.cut(sids)


# By mail ---------------------------------------------------------------------------------------


def sign_up(email: str, password: str, name: str, phone: str | None = None) -> None:
    """Sign-up as people use it: a new address gets an account and a verification link; a
    taken one gets a note to its owner ("someone tried to sign up with your address") and no
    account. The caller answers both alike ("check your mail")."""
    email = email.strip().lower()
    owner = find_by_email(email)
    if owner is None:
        try:
            user = register(email, password, name, phone)
        except Conflict:  # a racing sign-up took the address first
            owner = find_by_email(email)
        else:
            send_verification(user)
            return
    else:
        hash_password(password)  # the work a new account costs, so the time tells nothing
    if owner is not None:
        mail.send(owner.email, "signup_taken", user=owner,
                  reset_url=mail.link("/password-reset"), signin_url=mail.link("/signin"))


def send_verification(user: User) -> bool:
    """Mail ``user`` a new link to verify their address (earlier links stop working); False
    when the address is verified already."""
    if user.verified_at is not None:
        return False
    raw = recovery.issue(user, TokenKind.VERIFY)
    db.session.commit()
    mail.send(user.email, "verify", user=user, url=mail.link(f"/verify/{raw}"),
              hours=round(recovery.lifetime(TokenKind.VERIFY).total_seconds() / 3600))
    return True


def verify_email(raw: str) -> User:
    """Follow a verification link: the address is verified (refused naming ``token``)."""
    row = recovery.redeem(TokenKind.VERIFY, raw)
    user = db.session.get(User, row.user_id)
    assert user is not None
    if user.verified_at is None:
        user.verified_at = utcnow()
    db.session.commit()
    return user


def request_password_reset(email: str) -> None:
    """Mail a reset link when an account that may sign in has the address; nothing otherwise.
    The caller answers both alike."""
    user = find_by_email(email)
    if user is None or not sessions.can_sign_in(user):
        return
    raw = recovery.issue(user, TokenKind.RESET)
    db.session.commit()
    mail.send(user.email, "reset", user=user, url=mail.link(f"/password-reset/{raw}"),
              minutes=round(recovery.lifetime(TokenKind.RESET).total_seconds() / 60))


def reset_password(raw: str, password: str) -> User:
    """Follow a reset link with a new password: it is set, every web session of the account
    ends (and their live connections are cut), other links to reset or change the address
    stop working, and the address counts as verified (the link came to it). An account whose
    address was never confirmed loses its API tokens too: someone else may have registered it."""
    password_hash = hash_password(password)
    row = recovery.redeem(TokenKind.RESET, raw)
    user = db.session.get(User, row.user_id)
    assert user is not None
    if user.verified_at is None:
        # Whoever registered the address before its owner confirmed it may hold API tokens:
        # the owner taking the account over by this link ends them too.
        db.session.execute(delete(ApiToken).where(ApiToken.user_id == user.id))
    user.password_hash = password_hash
    user.verified_at = user.verified_at or utcnow()
    recovery.retire(user.id, TokenKind.RESET, TokenKind.CHANGE_EMAIL)
    sids = sessions.end_user(user.id)
    db.session.commit()
    sessions.cut(sids)
    mail.send(user.email, "password_changed", user=user, reset_url=mail.link("/password-reset"))
    return user


def _confirm_password(user: User, password: str, field: str) -> None:
    if not verify_password(user, password):
        raise Forbidden("That is not your password.", {field: ["That is not your password."]})


def change_password(user: User, current: str, new: str, *, keep: WebSession | None) -> int:
    """Change the password, confirmed by the current one (403 naming ``current_password``);
    every other web session ends (``keep``, this browser's, stays). How many ended."""
    _confirm_password(user, current, "current_password")
    user.password_hash = hash_password(new)
    recovery.retire(user.id, TokenKind.RESET)
    db.session.commit()
    ended = sessions.end_all(user, keep=keep)
    mail.send(user.email, "password_changed", user=user, reset_url=mail.link("/password-reset"))
    return ended


def change_email(user: User, password: str, new_email: str) -> None:
    """Ask to move the account to ``new_email``, confirmed by the password (403 naming
    ``password``): the new address gets a link that makes the change, the old one a note.
    An address another account has gets no link, and the answer is the same."""
    _confirm_password(user, password, "password")
    new_email = new_email.strip().lower()
    if new_email == user.email:
        raise Invalid("That is your address already.", {"email": ["That is your address already."]})
    if find_by_email(new_email) is not None:
        return
    raw = recovery.issue(user, TokenKind.CHANGE_EMAIL, new_email=new_email)
    db.session.commit()
    hours = round(recovery.lifetime(TokenKind.CHANGE_EMAIL).total_seconds() / 3600)
    mail.send(new_email, "change_email", user=user, new_email=new_email,
              url=mail.link(f"/email-change/{raw}"), hours=hours)
    mail.send(user.email, "change_email_notice", user=user, new_email=new_email,
              reset_url=mail.link("/password-reset"))


def confirm_email_change(raw: str) -> User:
    """Follow the link mailed to the new address: the account's address becomes it (and is
    verified). Refused naming ``token`` when the link is bad or the address was taken since."""
    row = recovery.redeem(TokenKind.CHANGE_EMAIL, raw)
    user = db.session.get(User, row.user_id)
    assert user is not None and row.new_email is not None
    taken = Invalid("That address belongs to another account now.",
                    {"token": ["That address belongs to another account now."]})
    if find_by_email(row.new_email) is not None:
        db.session.rollback()
        raise taken
    old = user.email
    user.email, user.verified_at = row.new_email, utcnow()
    try:
        db.session.commit()
    except IntegrityError:
        db.session.rollback()
        raise taken from None
    mail.send(old, "email_changed", user=user, new_email=user.email,
              reset_url=mail.link("/password-reset"))
    return user
