"""Which resource types the server has, read from its discovery documents.

The CLI resolves what a person types (plural, singular, short name, kind, "type.group",
a category such as "all") against /api/v1 and /apis/GROUP/VERSION, so it stays in step
with the server instead of keeping its own copy of the type list.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from typing import Any

from bramble.client import Client, resource_path


class UnknownResource(Exception):
    """A type or kind the server does not serve; the message is kubectl's wording."""


@dataclass(frozen=True)
class ApiResource:
    group: str
    version: str
    plural: str
    kind: str
    namespaced: bool
    singular: str = ""
    short_names: tuple[str, ...] = ()
    verbs: tuple[str, ...] = ()
    categories: tuple[str, ...] = ()
    subresources: frozenset[str] = frozenset()

    @property
    def api_version(self) -> str:
        return f"{self.group}/{self.version}" if self.group else self.version

    @property
    def qualified_kind(self) -> str:
        """"deployment.apps", "pod": how kubectl prefixes names of this type."""
        return f"{self.kind.lower()}.{self.group}" if self.group else self.kind.lower()

    @property
    def qualified_plural(self) -> str:
        return f"{self.plural}.{self.group}" if self.group else self.plural

    def path(self, namespace: str | None = None, name: str | None = None,
             subresource: str | None = None) -> str:
        return resource_path(self.group, self.version, self.plural,
                             namespace if self.namespaced else None, name, subresource)

    def names(self) -> set[str]:
        return {self.plural, self.singular or self.kind.lower(), self.kind.lower(),
                *self.short_names}


def parse_resource_list(doc: dict[str, Any], group: str, version: str) -> list[ApiResource]:
    """ApiResources from one APIResourceList, with subresources folded into their parent."""
    entries = doc.get("resources") or []
    subresources: dict[str, set[str]] = {}
    for entry in entries:
        name = entry.get("name", "")
        if "/" in name:
            parent, _, sub = name.partition("/")
            subresources.setdefault(parent, set()).add(sub)
    out = []
    for entry in entries:
        name = entry.get("name", "")
        if not name or "/" in name:
            continue
        out.append(ApiResource(
            group=entry.get("group") or group,
            version=entry.get("version") or version,
            plural=name,
            kind=entry.get("kind", ""),
            namespaced=bool(entry.get("namespaced")),
            singular=entry.get("singularName") or entry.get("kind", "").lower(),
            short_names=tuple(entry.get("shortNames") or ()),
            verbs=tuple(entry.get("verbs") or ()),
            categories=tuple(entry.get("categories") or ()),
            subresources=frozenset(subresources.get(name, ())),
        ))
    return out


class Discovery:
    """All served types, fetched once per command (a handful of small requests)."""

    def __init__(self, resources: list[ApiResource],
                 other_versions: list[ApiResource] | None = None) -> None:
        # Names and categories resolve to the preferred version only (as kubectl's
        # RESTMapper does), so "hpa" or "all" never names one type twice; a manifest's
        # apiVersion may still be any version served (`other_versions`).
        self.resources = resources
        self.other_versions = other_versions or []

    @classmethod
    async def fetch(cls, api: Client) -> Discovery:
        core, groups = await asyncio.gather(api.request("GET", "/api/v1"),
                                            api.request("GET", "/apis"))
        versions: list[tuple[str, str, bool]] = []
        for g in (groups or {}).get("groups") or []:
            served = [v.get("version") for v in g.get("versions") or [] if v.get("version")]
            preferred = (g.get("preferredVersion") or {}).get("version") or \
                (served[0] if served else None)
            versions += [(g.get("name", ""), v, v == preferred)
                         for v in dict.fromkeys([preferred, *served]) if v]
        docs = await asyncio.gather(*(api.request("GET", f"/apis/{g}/{v}")
                                      for g, v, _ in versions))
        resources = parse_resource_list(core or {}, "", "v1")
        others: list[ApiResource] = []
        for (g, v, preferred), doc in zip(versions, docs, strict=True):
            (resources if preferred else others).extend(parse_resource_list(doc or {}, g, v))
        return cls(resources, others)

    def resolve(self, text: str) -> list[ApiResource]:
        """What a person typed as TYPE: "po", "pods", "deployment.apps", "all", ...
        (several types for a category)."""
        text = text.strip().lower()
        name, _, group = text.partition(".")
        candidates = [r for r in self.resources
                      if name in r.names() and (not group or r.group == group
                                                or r.group.startswith(group + "."))]
        if not candidates and group:
            # A dotted name that is not type.group, e.g. a kind with a version "pod.v1".
            candidates = [r for r in self.resources if text in r.names()]
        if candidates:
            # Prefer the core group, as kubectl's priority order does.
            candidates.sort(key=lambda r: (r.group != "", r.group))
            return [candidates[0]]
        in_category = [r for r in self.resources if text in r.categories]
        if in_category:
            return in_category
        raise UnknownResource(f'the server doesn\'t have a resource type "{text}"')

    def by_kind(self, api_version: str, kind: str) -> ApiResource:
        for r in (*self.resources, *self.other_versions):
            if r.api_version == api_version and r.kind == kind:
                return r
        raise UnknownResource(f'no matches for kind "{kind}" in version "{api_version}"')
