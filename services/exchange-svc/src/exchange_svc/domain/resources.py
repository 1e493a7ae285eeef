"""What exchange-svc knows of a catalog resource: its data items, its key, and what it hosts.

A resource is hosted as records when it is structured data (database, spreadsheet, self-describing or interface
format, or the database / interface share method) and as files when it is shared as files (file share method or a
file format). Its records are keyed by the declared key, else by its subject identifier item (resident ID or
unified social credit code).
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property
from typing import Any

RECORD_FORMATS = frozenset({"database", "spreadsheet", "self_describing", "service_interface"})
RECORD_METHODS = frozenset({"database", "interface"})
FILE_FORMATS = frozenset({"electronic_file", "image", "streaming_media", "spreadsheet"})
KEY_SEPARATOR = "|"


@dataclass(frozen=True)
class Item:
    name: str
    label: str
    data_type: str
    length: int | None = None
    required: bool = False
    identifier_kind: str = "none"
    sensitivity: str = "internal"
    masking_rule: str = "none"

    @classmethod
    def from_catalog(cls, raw: dict[str, Any]) -> Item:
        return cls(
            name=str(raw["name"]),
            label=str(raw.get("label") or raw["name"]),
            data_type=str(raw.get("data_type") or "C"),
            length=raw.get("length"),
            required=bool(raw.get("required", False)),
            identifier_kind=str(raw.get("identifier_kind") or "none"),
            sensitivity=str(raw.get("sensitivity") or "internal"),
            masking_rule=str(raw.get("masking_rule") or "none"),
        )


@dataclass(frozen=True)
class HostedResource:
    code: str
    provider_code: str
    name: str
    resource_class: str
    share_type: str
    format_category: str
    share_method_type: str | None
    update_cycle: str
    items: tuple[Item, ...]
    declared_key: tuple[str, ...] | None
    status: str

    # Cached: a 100,000-row batch asks these for every value.
    @cached_property
    def _by_name(self) -> dict[str, Item]:
        return {i.name: i for i in self.items}

    def item(self, name: str) -> Item | None:
        return self._by_name.get(name)

    @cached_property
    def item_names(self) -> tuple[str, ...]:
        return tuple(i.name for i in self.items)

    @cached_property
    def subject_item(self) -> Item | None:
        """The identifier of the person or legal entity a record is about (required ones first)."""
        ids = [i for i in self.items if i.identifier_kind != "none"]
        ids.sort(key=lambda i: not i.required)
        if self.declared_key:
            in_key = [i for i in ids if i.name in self.declared_key]
            if in_key:
                return in_key[0]
        return ids[0] if ids else None

    @cached_property
    def key_items(self) -> tuple[str, ...]:
        if self.declared_key:
            return self.declared_key
        subject = self.subject_item
        return (subject.name,) if subject else ()

    @property
    def hosts_records(self) -> bool:
        return self.format_category in RECORD_FORMATS or self.share_method_type in RECORD_METHODS

    @property
    def hosts_files(self) -> bool:
        return self.share_method_type == "file" or self.format_category in FILE_FORMATS


def record_key(values: dict[str, Any], key_items: tuple[str, ...]) -> str:
    return KEY_SEPARATOR.join(str(values[k]) for k in key_items)
