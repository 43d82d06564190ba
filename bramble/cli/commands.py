"""The client commands: get, describe, apply, delete, scale, version.

Each is an async function of the parsed arguments and an open `Client`, returning the
exit code. Errors a person can act on are raised (StatusError, ConnectionFailed,
UsageError, ...) and printed by `main`; commands that act on several objects report
each failure as it happens, carry on, and return 1 at the end, as kubectl does.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import sys
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, TextIO

from bramble.cli import output
from bramble.cli.discovery import ApiResource, Discovery, UnknownResource
from bramble.client import APPLY_PATCH, JSON, MERGE_PATCH, TABLE, Client, resource_path
from bramble.kube.errors import NotFound, StatusError


class UsageError(Exception):
    """A command line that cannot work; the message says why."""


@dataclass
class Env:
    """What every command gets: the API, the namespace, and where to print."""

    api: Client
    namespace: str
    explicit_namespace: bool = False
    all_namespaces: bool = False
    out: TextIO = field(default_factory=lambda: sys.stdout)
    err: TextIO = field(default_factory=lambda: sys.stderr)

    def error(self, message: str) -> None:
        print(message, file=self.err, flush=True)


def server_error(err: StatusError, context: str = "") -> str:
    """kubectl's wording: "Error from server (NotFound): pods "x" not found"."""
    return f"Error from server ({err.reason}): {context}{err.message}"


def now() -> datetime:
    return datetime.now(UTC)


# --- targets --------------------------------------------------------------------------------

@dataclass
class Target:
    resource: ApiResource
    names: list[str] = field(default_factory=list)


def parse_targets(discovery: Discovery, args: list[str]) -> list[Target]:
    """kubectl's forms: TYPE[,TYPE...] [NAME...] or TYPE/NAME [TYPE/NAME...]."""
    if not args:
        raise UsageError("you must specify the type of resource, e.g. pods, deployments, "
                         "services (TYPE[,TYPE...] [NAME...] or TYPE/NAME)")
    if "/" in args[0]:
        targets: list[Target] = []
        for arg in args:
            type_, sep, name = arg.partition("/")
            if not sep or not type_ or not name:
                raise UsageError(f'there is no need to specify a resource type as a separate '
                                 f'argument when passing arguments in resource/name form '
                                 f'(got "{arg}")')
            resource = discovery.resolve(type_)[0]
            for t in targets:
                if t.resource == resource:
                    t.names.append(name)
                    break
            else:
                targets.append(Target(resource, [name]))
        return targets
    resources: list[ApiResource] = []
    for part in args[0].split(","):
        if part:
            for r in discovery.resolve(part):
                if r not in resources:
                    resources.append(r)
    names = args[1:]
    if names and len(resources) > 1:
        raise UsageError("names can only be given with a single resource type; use "
                         "TYPE/NAME forms for several types")
    return [Target(r, list(names)) for r in resources]


def _namespace_for(env: Env, resource: ApiResource) -> str | None:
    if not resource.namespaced or env.all_namespaces:
        return None
    return env.namespace


# --- get ------------------------------------------------------------------------------------

def _items_of(body: Any) -> list[dict[str, Any]]:
    if isinstance(body, dict) and isinstance(body.get("items"), list):
        return body["items"]
    return [body] if isinstance(body, dict) else []


def _fill_kind(obj: dict[str, Any], resource: ApiResource,
               managed_fields: bool = True) -> dict[str, Any]:
    # Items of a list carry no kind/apiVersion on the wire; printed alone they need them.
    if "kind" not in obj or "apiVersion" not in obj:
        obj = {"apiVersion": resource.api_version, "kind": resource.kind, **obj}
    if not managed_fields and "managedFields" in (obj.get("metadata") or {}):
        # Bookkeeping of server-side apply: noise unless asked for, as in kubectl.
        obj = dict(obj, metadata={k: v for k, v in obj["metadata"].items()
                                  if k != "managedFields"})
    return obj


def as_table(body: Any, resource: ApiResource, when: datetime) -> dict[str, Any]:
    """A Table from whatever the server answered (a server without Table support gets
    NAME and AGE, as kubectl does)."""
    if isinstance(body, dict) and body.get("kind") == "Table":
        return body
    from bramble.kube.printers import DEFAULT_COLUMNS, since

    rows = []
    for obj in _items_of(body):
        meta = obj.get("metadata") or {}
        rows.append({"cells": [meta.get("name", ""), since(meta.get("creationTimestamp"), when)],
                     "object": {"metadata": meta}})
    metadata = (body.get("metadata") or {}) if isinstance(body, dict) else {}
    return {"kind": "Table", "apiVersion": "meta.k8s.io/v1", "metadata": metadata,
            "columnDefinitions": DEFAULT_COLUMNS, "rows": rows}


def _resource_version(body: Any) -> str | None:
    """The version to watch from: a list's, a Table's, or a single object's (or its row's)."""
    if not isinstance(body, dict):
        return None
    rv = (body.get("metadata") or {}).get("resourceVersion")
    rows = body.get("rows") or []
    if not rv and rows:
        rv = (((rows[0].get("object") or {}).get("metadata")) or {}).get("resourceVersion")
    return rv or None


def _no_resources(env: Env, resource: ApiResource) -> str:
    if resource.namespaced and not env.all_namespaces:
        return f"No resources found in {env.namespace} namespace."
    return "No resources found"


async def get(env: Env, args: argparse.Namespace) -> int:
    discovery = await Discovery.fetch(env.api)
    targets = parse_targets(discovery, args.targets)
    fmt = args.output or ""
    if fmt not in ("", "wide", "yaml", "json", "name"):
        raise UsageError(f'unable to match a printer suitable for the output format "{fmt}", '
                         f"allowed formats are: json, name, wide, yaml")
    if args.watch and len(targets) > 1:
        raise UsageError("you may only specify a single resource type with --watch")
    table_mode = fmt in ("", "wide")
    params = {"labelSelector": args.selector or None,
              "fieldSelector": args.field_selector or None}
    # Names get a "kind.group/" prefix when several types share the output, as in kubectl.
    several = len(targets) > 1 or ("/" not in args.targets[0]
                                   and len(discovery.resolve(args.targets[0])) > 1)
    failed = False
    found_any = False
    printed_tables = 0
    objects: list[dict[str, Any]] = []
    watch_from: str | None = None
    printers = {id(t): output.TablePrinter(
        wide=fmt == "wide", with_namespace=env.all_namespaces and t.resource.namespaced,
        kind_prefix=f"{t.resource.qualified_kind}/" if several else "",
        no_headers=args.no_headers) for t in targets}

    for target in targets:
        r = target.resource
        ns = _namespace_for(env, r)
        bodies: list[Any] = []
        if target.names:
            for name in target.names:
                try:
                    bodies.append(await env.api.request(
                        "GET", r.path(ns, name), accept=TABLE if table_mode else JSON))
                    watch_from = _resource_version(bodies[-1])
                except StatusError as err:
                    env.error(server_error(err))
                    failed = True
        else:
            body = await env.api.request("GET", r.path(ns), params=params,
                                         accept=TABLE if table_mode else JSON)
            bodies.append(body)
            watch_from = _resource_version(body)

        if table_mode:
            when = now()
            tables = [as_table(b, r, when) for b in bodies]
            rows = [row for t in tables for row in t.get("rows") or []]
            if not rows:
                continue
            found_any = True
            merged = dict(tables[0], rows=rows)
            if printed_tables:
                env.out.write("\n")
            env.out.write(printers[id(target)].render(merged))
            env.out.flush()
            printed_tables += 1
        else:
            for b in bodies:
                objects += [_fill_kind(o, r, args.show_managed_fields) for o in _items_of(b)]

    if not table_mode:
        found_any = bool(objects)
        if fmt == "name":
            for obj in objects:
                env.out.write(output.object_name(obj) + "\n")
        elif objects or not failed:
            # Like kubectl: an empty result is an empty List, so `| jq .items` still works.
            single = (len(targets) == 1 and len(targets[0].names) == 1 and len(objects) == 1)
            doc = objects[0] if single else output.as_list(objects)
            env.out.write(output.to_json(doc) if fmt == "json" else output.to_yaml(doc))
        env.out.flush()

    if (table_mode and not found_any and not failed and not any(t.names for t in targets)
            and not args.watch):
        env.error(_no_resources(env, targets[0].resource))
    if args.watch:
        await _watch(env, targets[0], params, fmt, watch_from, printers[id(targets[0])],
                     args.show_managed_fields)
    return 1 if failed else 0


async def _watch(env: Env, target: Target, params: dict[str, Any], fmt: str,
                 resource_version: str | None, printer: output.TablePrinter,
                 managed_fields: bool = False) -> None:
    """Print changes after the listed state until the server ends the stream (then
    return, as kubectl does, exit code 0)."""
    r = target.resource
    ns = _namespace_for(env, r)
    query = dict(params)
    if target.names:
        if len(target.names) > 1:
            raise UsageError("watch is only supported on individual resources and resource "
                             "collections, but several names were given")
        query["fieldSelector"] = ",".join(
            s for s in (query.get("fieldSelector"), f"metadata.name={target.names[0]}") if s)
    if resource_version:
        query["resourceVersion"] = resource_version
    table_mode = fmt in ("", "wide")
    events = env.api.watch(r.path(ns), query, accept=TABLE if table_mode else JSON)
    async with contextlib.aclosing(events):
        async for type_, obj in events:
            if type_ in ("BOOKMARK", "ERROR") or obj is None:
                continue
            if table_mode:
                env.out.write(printer.render(as_table(obj, r, now())))
            elif fmt == "name":
                env.out.write(output.object_name(_fill_kind(obj, r)) + "\n")
            elif fmt == "json":
                env.out.write(output.to_json(_fill_kind(obj, r, managed_fields)))
            else:
                env.out.write("---\n" + output.to_yaml(_fill_kind(obj, r, managed_fields)))
            env.out.flush()


# --- describe -------------------------------------------------------------------------------

async def describe(env: Env, args: argparse.Namespace) -> int:
    from bramble.cli import describe as describer

    discovery = await Discovery.fetch(env.api)
    targets = parse_targets(discovery, args.targets)
    failed = False
    first = True
    for target in targets:
        r = target.resource
        ns = _namespace_for(env, r)
        objs: list[dict[str, Any]] = []
        if target.names:
            for name in target.names:
                try:
                    objs.append(await env.api.request("GET", r.path(ns, name)))
                except StatusError as err:
                    env.error(server_error(err))
                    failed = True
        else:
            body = await env.api.request("GET", r.path(ns),
                                         params={"labelSelector": args.selector or None})
            objs = [_fill_kind(o, r) for o in _items_of(body)]
            if not objs:
                env.error(_no_resources(env, r))
        key = f"{r.api_version}/{r.kind}"
        for obj in objs:
            related = {}
            for label, q in describer.related_queries(key, obj).items():
                path = resource_path(q.group, q.version, q.plural, q.namespace, q.name)
                try:
                    related[label] = (await env.api.request("GET", path, params=q.params)) \
                        if q.name else _items_of(await env.api.request("GET", path,
                                                                       params=q.params))
                except StatusError:
                    continue  # the description is still useful without it
            events = await _events_for(env, obj)
            if not first:
                env.out.write("\n\n")
            first = False
            env.out.write(describer.describe(key, obj, events=events, related=related,
                                             now=now()))
            env.out.flush()
    return 1 if failed else 0


async def _events_for(env: Env, obj: dict[str, Any]) -> list[dict[str, Any]] | None:
    meta = obj.get("metadata") or {}
    if not meta.get("uid"):
        return None
    ns = meta.get("namespace")
    path = f"/api/v1/namespaces/{ns}/events" if ns else "/api/v1/events"
    try:
        body = await env.api.request(
            "GET", path, params={"fieldSelector": f"involvedObject.uid={meta['uid']}"})
    except StatusError:
        return None
    return _items_of(body)


# --- apply ----------------------------------------------------------------------------------

def _object_namespace(env: Env, resource: ApiResource, obj: dict[str, Any],
                      source: str) -> str | None:
    if not resource.namespaced:
        return None
    own = (obj.get("metadata") or {}).get("namespace")
    if own and env.explicit_namespace and own != env.namespace:
        raise UsageError(f'the namespace from the provided object "{own}" does not match the '
                         f'namespace "{env.namespace}" given with --namespace (in "{source}"); '
                         f"drop one of them")
    return own or env.namespace


async def apply(env: Env, args: argparse.Namespace) -> int:
    from bramble.cli import manifests

    loaded = manifests.load(args.filename, recursive=args.recursive, stdin=sys.stdin)
    if not loaded:
        raise UsageError("no objects passed to apply")
    discovery = await Discovery.fetch(env.api)
    failed = False
    for m in loaded:
        if m.obj is None:
            env.error(f"error: {m.error}")
            failed = True
            continue
        obj = m.obj
        name = (obj.get("metadata") or {}).get("name") or ""
        try:
            resource = discovery.by_kind(obj["apiVersion"], obj["kind"])
            if not name:
                raise UsageError(f'error when applying "{m.source}": resource name may not be '
                                 f"empty (server-side apply needs metadata.name)")
            ns = _object_namespace(env, resource, obj, m.source)
            path = resource.path(ns, name)
            try:
                before = await env.api.request("GET", path)
            except NotFound:
                before = None
            after = await env.api.request(
                "PATCH", path, json=obj, content_type=APPLY_PATCH,
                params={"fieldManager": args.field_manager, "fieldValidation": "Strict",
                        "force": bool(args.force_conflicts)})
        except UnknownResource as err:
            env.error(f'error: resource mapping not found for name: "{name}" namespace: '
                      f'"{(obj.get("metadata") or {}).get("namespace", "")}" from "{m.source}": '
                      f"{err}")
            failed = True
            continue
        except UsageError as err:
            env.error(f"error: {err}")
            failed = True
            continue
        except StatusError as err:
            env.error(server_error(err, f'error when applying "{m.source}": '))
            failed = True
            continue
        if before is None:
            verb = "created"
        elif _rv(before) == _rv(after):
            verb = "unchanged"
        else:
            verb = "configured"
        env.out.write(f"{resource.qualified_kind}/{name} {verb}\n")
        env.out.flush()
    return 1 if failed else 0


def _rv(obj: Any) -> str | None:
    return ((obj or {}).get("metadata") or {}).get("resourceVersion")


# --- delete ---------------------------------------------------------------------------------

CASCADE = {"background": "Background", "foreground": "Foreground", "orphan": "Orphan"}


async def delete(env: Env, args: argparse.Namespace) -> int:
    if args.filename and args.targets:
        raise UsageError("give either -f FILE or TYPE NAME..., not both")
    if not args.filename and not args.targets:
        raise UsageError("you must provide one or more resources by argument or filename")
    if args.cascade not in CASCADE:
        raise UsageError(f'invalid --cascade "{args.cascade}": must be one of background, '
                         f"foreground, orphan")
    options: dict[str, Any] = {"kind": "DeleteOptions", "apiVersion": "v1",
                               "propagationPolicy": CASCADE[args.cascade]}
    if args.grace_period is not None and args.grace_period >= 0:
        options["gracePeriodSeconds"] = args.grace_period
    discovery = await Discovery.fetch(env.api)
    failed = False
    work: list[tuple[ApiResource, str | None, str]] = []

    if args.filename:
        from bramble.cli import manifests

        for m in manifests.load(args.filename, recursive=args.recursive, stdin=sys.stdin):
            if m.obj is None:
                env.error(f"error: {m.error}")
                failed = True
                continue
            try:
                r = discovery.by_kind(m.obj["apiVersion"], m.obj["kind"])
                name = (m.obj.get("metadata") or {}).get("name") or ""
                if not name:
                    raise UsageError(f'"{m.source}": resource name may not be empty')
                work.append((r, _object_namespace(env, r, m.obj, m.source), name))
            except (UnknownResource, UsageError) as err:
                env.error(f"error: {err}")
                failed = True
    else:
        for target in parse_targets(discovery, args.targets):
            r, ns = target.resource, _namespace_for(env, target.resource)
            names = list(target.names)
            if not names:
                if not (args.selector or args.all):
                    raise UsageError("resource(s) were provided, but no name was specified; "
                                     "give names, -l SELECTOR or --all")
                body = await env.api.request("GET", r.path(ns),
                                             params={"labelSelector": args.selector or None})
                names = [(o.get("metadata") or {}).get("name", "") for o in _items_of(body)]
                if not names:
                    env.error(_no_resources(env, r))
            work += [(r, ns, n) for n in names]

    for r, ns, name in work:
        try:
            await env.api.request("DELETE", r.path(ns, name), json=options)
        except NotFound as err:
            if not args.ignore_not_found:
                env.error(server_error(err))
                failed = True
            continue
        except StatusError as err:
            env.error(server_error(err))
            failed = True
            continue
        env.out.write(f'{r.qualified_kind} "{name}" deleted\n')
        env.out.flush()
    return 1 if failed else 0


# --- scale ----------------------------------------------------------------------------------

async def scale(env: Env, args: argparse.Namespace) -> int:
    if args.replicas is None or args.replicas < 0:
        raise UsageError("--replicas=COUNT is required, and COUNT must be 0 or more")
    discovery = await Discovery.fetch(env.api)
    targets = parse_targets(discovery, args.targets)
    failed = False
    for target in targets:
        r = target.resource
        if "scale" not in r.subresources:
            raise UsageError(f"{r.qualified_plural} cannot be scaled (no scale subresource)")
        if not target.names:
            raise UsageError("give the name of what to scale: TYPE/NAME or TYPE NAME")
        for name in target.names:
            try:
                await env.api.request("PATCH", r.path(_namespace_for(env, r), name, "scale"),
                                      json={"spec": {"replicas": args.replicas}},
                                      content_type=MERGE_PATCH)
            except StatusError as err:
                env.error(server_error(err))
                failed = True
                continue
            env.out.write(f"{r.qualified_kind}/{name} scaled\n")
            env.out.flush()
    return 1 if failed else 0


# --- push -----------------------------------------------------------------------------------

async def push(env: Env, args: argparse.Namespace) -> int:
    """Side-load an image archive (`podman save` / `docker save`) onto the nodes."""
    path = Path(args.image)
    if not await asyncio.to_thread(path.is_file):
        raise UsageError(f"{args.image}: no such file (give an image archive made with "
                         f"`podman save` or `docker save`)")
    params = {"node": args.node} if args.node else None
    try:
        result = await env.api.upload("/bramble/v1/images", path, params=params,
                                      content_type="application/x-tar")
    except StatusError as err:
        env.error(server_error(err))
        return 1
    failed = False
    for node, outcome in sorted((result.get("nodes") or {}).items()):
        if outcome.get("error"):
            failed = True
            env.error(f"{node}: error: {outcome['error']}")
        else:
            env.out.write(f"{node}: loaded {', '.join(outcome.get('images') or []) or '-'}\n")
    env.out.flush()
    return 1 if failed else 0


# --- version --------------------------------------------------------------------------------

async def version(env: Env, args: argparse.Namespace) -> int:
    info = await env.api.request("GET", "/version")
    server = (info or {}).get("gitVersion") or \
        f"v{(info or {}).get('major', '?')}.{(info or {}).get('minor', '?')}"
    env.out.write(f"Server Version: {server}\n")
    return 0
