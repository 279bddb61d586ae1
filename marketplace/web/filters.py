"""Template filters every page uses: money and moments as a person reads them."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from flask import Flask

from marketplace.money import format_money


def money(value: dict[str, Any]) -> str:
    return format_money(value["amount"], value["currency"])


def when(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, str):
        value = datetime.fromisoformat(value)
    return value.strftime("%a %b %d, %H:%M") + " UTC"


def register(app: Flask) -> None:
    app.add_template_filter(money, "money")
    app.add_template_filter(when, "when")
