"""What catalog-svc emits, each type registered with its payload schema (topic `<prefix>.catalog`).

Resource events carry the whole resource as published (every element and data item), so a consumer
(request-svc, exchange-svc, audit-svc) keeps its own projection without calling back. The subject, and so the
Kafka key, is the resource id: one resource's events stay in order.
"""

from __future__ import annotations

from datetime import date
from typing import Any, Literal

from pydantic import BaseModel, Field

from govshare_common.events import EventRegistry

from catalog_svc.domain import ResourceContent

registry = EventRegistry()

SUBMITTED = "catalog.resource.submitted"
RETURNED = "catalog.resource.returned"
PUBLISHED = "catalog.resource.published"
UPDATED = "catalog.resource.updated"
WITHDRAWN = "catalog.resource.withdrawn"
OBLIGATION_OVERDUE = "catalog.obligation.overdue"
OBLIGATION_DEADLINE_MOVED = "catalog.obligation.deadline_moved"
COLLECTION_REPEATED = "catalog.collection.repeated"
PROJECT_CATALOG_MISSING = "catalog.project.catalog_missing"
PEER_REGISTERED = "catalog.federation.peer.registered"
PEER_CHANGED = "catalog.federation.peer.changed"
RESYNC_STARTED = "catalog.federation.resync.started"
CHANGES_MIRRORED = "catalog.federation.changes.mirrored"


class ResourceSnapshot(ResourceContent):
    """A resource version with what the platform adds: id, code, version and publish date."""

    id: str
    code: str | None = Field(description="信息资源代码; null until first published")
    version: int
    publish_date: date | None = Field(default=None, description="发布日期")


class FieldChange(BaseModel):
    field: str = Field(description="dotted path; data items by name: data_items.XM.length")
    change: Literal["added", "removed", "changed"]
    before: Any = None
    after: Any = None


class ResourceEvent(BaseModel):
    resource_id: str
    code: str | None
    version: int
    provider_code: str
    provider_name: str
    actor: str = Field(description="the principal's subject")


class ResourceSubmitted(ResourceEvent):
    change_reason: str | None
    submitted: ResourceSnapshot = Field(description="the version now under review")
    published: ResourceSnapshot | None = Field(description="the version that stays live meanwhile, if any")
    changes: list[FieldChange] = Field(description="field-level changes from the published version")


class ResourceReturned(ResourceEvent):
    comment: str
    submitted: ResourceSnapshot


class ResourcePublished(ResourceEvent):
    published: ResourceSnapshot


class ResourceUpdated(ResourceEvent):
    previous_version: int
    change_reason: str | None
    published: ResourceSnapshot
    changes: list[FieldChange]


class ResourceWithdrawn(ResourceEvent):
    reason: str
    published: ResourceSnapshot = Field(description="the version that was live until now")


class ObligationDeadlineMoved(BaseModel):
    obligation_id: str
    department_code: str
    previous_due_on: date
    due_on: date
    calendar_year: int


class ObligationOverdue(BaseModel):
    obligation_id: str
    department_code: str
    department_name: str | None
    reason: str
    description: str
    recorded_on: date
    working_days: int
    due_on: date
    overdue_since: date


class CollectionRepeated(BaseModel):
    """Found at publication: the resource collects again what a base resource of another department holds."""

    resource_id: str
    resource_code: str
    resource_name: str
    version: int
    provider_code: str
    provider_name: str
    base_resource_code: str
    base_resource_name: str
    base_provider_code: str
    duplicated_items: list[str]


class ProjectCatalogMissing(BaseModel):
    """Found at acceptance: the project's resource catalog is not (all) on the platform; acceptance is refused."""

    project_id: str
    project_name: str
    department_code: str
    unpublished: list[str] = Field(description="names of the project's resources not published; empty: none listed")
    actor: str


class Peer(BaseModel):
    """A peer platform as its platform office registered it here (key = its division code)."""

    division_code: str
    name: str
    level: str
    relation: Literal["parent", "child"]
    base_url: str
    public_key: str
    actor: str


class ResyncStarted(BaseModel):
    division_code: str
    previous_cursor: int
    actor: str


class MirroredChange(BaseModel):
    resource_id: str
    kind: Literal["upsert", "tombstone"]
    code: str | None
    origin_division: str


class ChangesMirrored(BaseModel):
    """A page of a peer's change feed applied to this catalog (key = the peer's division code): a child's
    catalog, or what the parent shares across levels."""

    peer: str
    after: int
    cursor: int
    changes: list[MirroredChange]
    refused: list[str] = Field(description="resource ids the child may not write here (ours, or another child's)")


registry.register(SUBMITTED, ResourceSubmitted, "a department submitted a resource version for review")
registry.register(RETURNED, ResourceReturned, "the platform office returned a submitted version with comments")
registry.register(PUBLISHED, ResourcePublished, "a resource was published for the first time")
registry.register(UPDATED, ResourceUpdated, "a new version of a published resource was published")
registry.register(WITHDRAWN, ResourceWithdrawn, "a published resource was withdrawn")
registry.register(OBLIGATION_OVERDUE, ObligationOverdue, "a department missed its deadline to update its catalog")
registry.register(
    OBLIGATION_DEADLINE_MOVED,
    ObligationDeadlineMoved,
    "a year's holidays entered or corrected moved an open obligation's due date",
)
registry.register(
    COLLECTION_REPEATED,
    CollectionRepeated,
    "a published resource's data items repeat a base resource's: repeated collection, a violation",
)
registry.register(
    PROJECT_CATALOG_MISSING,
    ProjectCatalogMissing,
    "an IT project came to acceptance without its resource catalog on the platform, a violation",
)
registry.register(PEER_REGISTERED, Peer, "the platform office registered a peer platform (parent or child)")
registry.register(PEER_CHANGED, Peer, "the platform office changed a peer's address, key, name, level or relation")
registry.register(RESYNC_STARTED, ResyncStarted, "the platform office asked for a child's whole catalog again")
registry.register(
    CHANGES_MIRRORED,
    ChangesMirrored,
    "a page of a peer platform's catalog changes (publications, updates, withdrawals) was mirrored here",
)
