"""Turning listed rows into the one page envelope every list answers."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import TypeVar

from locker_server.api.deps import Page, PageParams

RowT = TypeVar("RowT")
ItemT = TypeVar("ItemT")


def page_of(
    rows: Sequence[RowT], total: int, page: PageParams, public: Callable[[RowT], ItemT]
) -> Page[ItemT]:
    """A page of ``rows`` (already limited by the query), each shown through ``public``."""
    items = [public(row) for row in rows]
    return Page[ItemT](items=items, total=total, limit=page.limit, offset=page.offset)


def slice_page(
    rows: Sequence[RowT], page: PageParams, public: Callable[[RowT], ItemT]
) -> Page[ItemT]:
    """A page cut from a short list read whole (sites, cabinets, doors: tens, not thousands)."""
    window = rows[page.offset : page.offset + page.limit]
    return page_of(window, len(rows), page, public)
