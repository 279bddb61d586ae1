"""Reading the app's HTML pages in tests: one small DOM (the standard library's parser is enough
for markup we write ourselves), so a test asks "which error is next to this input" or "where
does this link go" instead of matching text with a regular expression."""

from __future__ import annotations

import re
from collections.abc import Iterator
from html.parser import HTMLParser
from typing import Any

VOID = {"area", "base", "br", "col", "embed", "hr", "img", "input", "link", "meta", "source",
        "track", "wbr"}
URL_ATTRIBUTES = ("src", "href", "action", "data")


def same_for_anyone(html: str) -> str:
    """A page as two people could compare it: every request's script nonce (random, and the
    same for everyone) blanked out."""
    return re.sub(r'nonce="[^"]*"', 'nonce=""', html)


class Node:
    """An element: its tag, attributes, parent and children (elements and text)."""

    def __init__(self, tag: str, attrs: dict[str, str], parent: Node | None) -> None:
        self.tag, self.attrs, self.parent = tag, attrs, parent
        self.children: list[Node | str] = []

    def __repr__(self) -> str:
        return f"<{self.tag} {self.attrs}>"

    @property
    def classes(self) -> set[str]:
        return set(self.attrs.get("class", "").split())

    def text(self) -> str:
        """The text inside, whitespace collapsed as a browser shows it."""
        parts = [c if isinstance(c, str) else f" {c.text()} " for c in self.children]
        return re.sub(r"\s+", " ", "".join(parts)).strip()

    def source(self) -> str:
        """The text inside exactly as written (for a script's code)."""
        return "".join(c if isinstance(c, str) else c.source() for c in self.children)

    def iter(self) -> Iterator[Node]:
        for child in self.children:
            if isinstance(child, Node):
                yield child
                yield from child.iter()

    def find_all(self, tag: str | None = None, cls: str | None = None, **attrs: str) -> list[Node]:
        """Elements below this one by tag, classes (``cls="card unread"``: both) and attribute
        values (``for_`` is ``for``, ``aria_invalid`` is ``aria-invalid``)."""
        wanted = set(cls.split()) if cls else set()
        return [n for n in self.iter()
                if (tag is None or n.tag == tag) and wanted <= n.classes
                and all(n.attrs.get(k.rstrip("_").replace("_", "-")) == v
                        for k, v in attrs.items())]

    def find(self, tag: str | None = None, cls: str | None = None, **attrs: str) -> Node | None:
        found = self.find_all(tag, cls, **attrs)
        return found[0] if found else None

    def by_id(self, id_: str) -> Node | None:
        return self.find(id=id_)

    def closest(self, cls: str) -> Node | None:
        """The nearest ancestor with class ``cls``."""
        node = self.parent
        while node is not None and cls not in node.classes:
            node = node.parent
        return node


class _Builder(HTMLParser):
    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.root = Node("#document", {}, None)
        self.current = self.root

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        node = Node(tag, {k: v or "" for k, v in attrs}, self.current)
        self.current.children.append(node)
        if tag not in VOID:
            self.current = node

    def handle_startendtag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.current.children.append(Node(tag, {k: v or "" for k, v in attrs}, self.current))

    def handle_endtag(self, tag: str) -> None:
        node: Node | None = self.current
        while node is not None and node.tag != tag:
            node = node.parent
        if node is not None and node.parent is not None:
            self.current = node.parent

    def handle_data(self, data: str) -> None:
        self.current.children.append(data)


def dom(page: Any) -> Node:
    """The document of a response (test client or ``requests``) or of HTML text."""
    if isinstance(page, str):
        html = page
    elif hasattr(page, "get_data"):
        html = page.get_data(as_text=True)
    else:
        html = page.text
    builder = _Builder()
    builder.feed(html)
    builder.close()
    return builder.root


def _doc(page: Any) -> Node:
    return page if isinstance(page, Node) else dom(page)


def field_error(page: Any, name: str) -> str | None:
    """The error shown in the same field wrapper as the input/textarea/select named ``name``
    (checked to be announced: the wrapper marked, the control invalid and described by it)."""
    for control in _doc(page).find_all(name=name):
        if control.tag not in ("input", "textarea", "select"):
            continue
        wrapper = control.closest("field") or control.closest("has-error")
        if wrapper is None and control.attrs.get("type") == "checkbox":
            wrapper = control.parent
            while wrapper is not None and wrapper.tag != "fieldset":
                wrapper = wrapper.parent
        assert wrapper is not None, f"{name} has no field wrapper"
        error = wrapper.find("p", cls="error")
        if error is not None:
            assert "has-error" in wrapper.classes
            if control.attrs.get("type") != "checkbox":
                assert control.attrs.get("aria-invalid") == "true"
                assert error.attrs["id"] in control.attrs.get("aria-describedby", "").split()
            return error.text()
    return None


def messages_shown(page: Any) -> dict[str, str]:
    """Every message the page shows (``p.error`` next to a field, ``p.alert`` for a form), by
    the element's id."""
    return {p.attrs["id"]: p.text() for p in _doc(page).find_all("p")
            if p.classes & {"error", "alert"} and "id" in p.attrs}


def field_errors(page: Any) -> dict[str, str]:
    """The field errors shown (``p.error#e-<name>``), by ``<name>``."""
    return {p.attrs["id"].removeprefix("e-"): p.text()
            for p in _doc(page).find_all("p", cls="error") if p.attrs.get("id", "").startswith("e-")}


def value_of(page: Any, name: str) -> str:
    """The value of the first input named ``name`` (a hidden field, what was typed)."""
    control = _doc(page).find("input", name=name)
    assert control is not None, f"no input named {name}"
    return control.attrs.get("value", "")


def csrf_token(page: Any) -> str:
    return value_of(page, "csrf_token")


def links(page: Any) -> list[str]:
    """Every URL the page points at (``src``, ``href``, ``action``, ``data``), in order."""
    return [n.attrs[a] for n in _doc(page).iter() for a in URL_ATTRIBUTES if n.attrs.get(a)]


def scripts(page: Any) -> list[str]:
    """The code of every inline script."""
    return [code for s in _doc(page).find_all("script") if (code := s.source()).strip()]
