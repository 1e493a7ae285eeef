"""Violations the catalog finds by itself, each announced by an event that audit-svc turns into a rectification
notice with the profile's deadline (as it does for overdue update obligations): repeated collection, found when
a resource is published, and an IT project whose catalog is missing at acceptance."""

from __future__ import annotations

from govshare_common.db import Database, UnitOfWork

from catalog_svc import domain, store
from catalog_svc.domain import ResourceContent
from catalog_svc.events import (
    COLLECTION_REPEATED,
    PROJECT_CATALOG_MISSING,
    CollectionRepeated,
    ProjectCatalogMissing,
)


async def check_repeated_collection(
    uow: UnitOfWork, *, resource_id: str, code: str, version: int, content: ResourceContent
) -> domain.RepeatedCollection | None:
    """At publication: does the resource collect again what a base resource of another department holds?"""
    own = [i for i in content.data_items if i.identifier_kind == "none"]
    bases = await store.base_resources_sharing_items(
        uow.conn, provider=content.provider_code, names=[i.name for i in own], labels=[i.label for i in own]
    )
    found = domain.repeated_collection(content, bases)
    if found is not None:
        uow.emit(
            COLLECTION_REPEATED,
            resource_id,
            CollectionRepeated(
                resource_id=resource_id,
                resource_code=code,
                resource_name=content.name,
                version=version,
                provider_code=content.provider_code,
                provider_name=content.provider_name,
                base_resource_code=found.base_code,
                base_resource_name=found.base_name,
                base_provider_code=found.base_provider_code,
                duplicated_items=list(found.items),
            ),
        )
    return found


async def report_catalog_missing(db: Database, refusal: domain.AcceptanceRefused, *, actor: str) -> None:
    """The acceptance is refused and its unit of work rolled back; the violation it found is a fact of its own,
    recorded in a unit of work of its own."""
    async with db.unit_of_work() as uow:
        uow.emit(
            PROJECT_CATALOG_MISSING,
            refusal.project_id,
            ProjectCatalogMissing(
                project_id=refusal.project_id,
                project_name=refusal.project_name,
                department_code=refusal.department_code,
                unpublished=list(refusal.unpublished),
                actor=actor,
            ),
        )
