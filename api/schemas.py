"""What the API answers, where it is not a vmdash/virt dataclass as it stands."""

from __future__ import annotations

from datetime import datetime
from typing import Generic, TypeVar

from django.core.paginator import Paginator
from ninja import Field, Schema
from pydantic import BaseModel

T = TypeVar("T")

PER_PAGE = 50
MAX_PER_PAGE = 500


class Page(BaseModel, Generic[T]):
    """One page of a list: `items`, and how many there are in all."""

    items: list[T]
    total: int
    page: int
    pages: int


def page_of(rows: list[T], page: int, per_page: int) -> Page[T]:
    """Page `page` (from 1; past the end: the last) of `rows`, `per_page` each."""
    paged = Paginator(rows, per_page).get_page(page)
    return Page[T](
        items=list(paged.object_list),
        total=paged.paginator.count,
        page=paged.number,
        pages=paged.paginator.num_pages,
    )


class Paging(Schema):
    page: int = Field(1, ge=1, le=1_000_000)
    per_page: int = Field(PER_PAGE, ge=1, le=MAX_PER_PAGE)


class HostOut(Schema):
    slug: str
    name: str
    uri: str
    state: str  # up or down, from the live stream
    down_since: datetime | None = None


class Me(Schema):
    username: str
    superuser: bool
    token: str | None = None  # the token's name when called with one
    token_role: str | None = None  # its bound, if any
    token_scope: str | None = None
    token_expires_at: datetime | None = None


class OpDone(Schema):
    host: str
    name: str
    done: str  # "VM 'x' was started."


class Confirm(Schema):
    """For what destroys something: the object's name again, as the pages ask."""

    confirm: str = ""


class XmlOut(Schema):
    xml: str
    digest: str  # give it back with a change: a change made meanwhile is refused


class XmlIn(Schema):
    xml: str = Field(..., max_length=2_000_000)
    digest: str = Field(..., max_length=64)


class XmlDone(Schema):
    diff: str
    lost: list[str]  # lines libvirt did not keep
    digest: str


class VersionOut(Schema):
    id: int
    at: datetime
    name: str
    username: str  # "" when made outside vmdash
    reason: str
    summary: str
    digest: str


class ConsoleOut(Schema):
    url: str  # the console page; a browser logged in as the same person opens it
    view_only: bool


class AuditOut(Schema):
    at: datetime
    username: str
    via: str
    remote_addr: str | None
    action: str
    outcome: str
    host: str
    object_type: str
    object_name: str
    object_uuid: str
    message: str


class LoadOut(Schema):
    cpu_percent: float | None
    memory_used: int | None
    memory_total: int | None
