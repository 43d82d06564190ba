"""Validation shared by every kind: field paths, type guards, metadata, label selectors.

Role: the building blocks the per-group modules (core, apps, batch) compose. Mirrors
k8s.io/apimachinery/pkg/api/validation (ObjectMeta) and pkg/apis/meta/v1/validation.

Invariants:
- Every check returns a list of FieldErrors (all of them, never just the first) and never
  raises, whatever shape the JSON has: a value of the wrong type becomes a FieldError
  ("must be of type integer") at its path, and checks below it are skipped.
- Paths print as Kubernetes prints them: `spec.containers[0].ports[1].containerPort`,
  `metadata.labels`, `data[key.name]`.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any

import orjson

from bramble.kube import names
from bramble.kube.errors import FieldError, forbidden, invalid, not_supported, required

Obj = dict[str, Any]
Errs = list[FieldError]
NameFn = Callable[[str, bool], list[str]]

IMMUTABLE = "field is immutable"
NEGATIVE = "must be greater than or equal to 0"
MAX_INT32 = 2**31 - 1

# Finalizers with no domain prefix that Kubernetes knows (helper.IsStandardFinalizerName).
STANDARD_FINALIZERS = frozenset({"kubernetes", "orphan", "foregroundDeletion"})
# Kinds that may not own anything (apimachinery BannedOwners).
BANNED_OWNERS = frozenset({("v1", "Event")})


# --- paths ---------------------------------------------------------------------------------

def child(path: str, *names_: str) -> str:
    for name in names_:
        path = f"{path}.{name}" if path else name
    return path


def index(path: str, i: int) -> str:
    return f"{path}[{i}]"


def key(path: str, k: str) -> str:
    return f"{path}[{k}]"


# --- FieldValueNotFound ----------------------------------------------------------------------

NOT_FOUND = "FieldValueNotFound"


@dataclass(frozen=True)
class NotFoundError(FieldError):
    """`field: Not found: "value"` - bramble.kube.errors has no constructor for it yet."""

    def message(self) -> str:
        try:
            shown = orjson.dumps(self.value).decode()
        except TypeError:
            shown = repr(self.value)
        return f"Not found: {shown}"


def not_found(path: str, value: Any) -> FieldError:
    return NotFoundError(NOT_FOUND, path, "", value)


# --- type guards -----------------------------------------------------------------------------

_TYPE_NAMES = {dict: "object", list: "array", str: "string", int: "integer", bool: "boolean"}


def _of_type(value: Any, kind: type) -> bool:
    if kind is int:
        return isinstance(value, int) and not isinstance(value, bool)
    return isinstance(value, kind)


def typed(obj: Mapping, name: str, kind: type, path: str, errs: Errs) -> Any:
    """obj[name] if it has the JSON type `kind`; None (and an error if present) otherwise."""
    value = obj.get(name) if isinstance(obj, Mapping) else None
    if value is None:
        return None
    if not _of_type(value, kind):
        errs.append(invalid(child(path, name), value, f"must be of type {_TYPE_NAMES[kind]}"))
        return None
    return value


def get_map(obj: Mapping, name: str, path: str, errs: Errs) -> Obj:
    return typed(obj, name, dict, path, errs) or {}


def get_list(obj: Mapping, name: str, path: str, errs: Errs) -> list:
    return typed(obj, name, list, path, errs) or []


def get_str(obj: Mapping, name: str, path: str, errs: Errs) -> str:
    return typed(obj, name, str, path, errs) or ""


def get_int(obj: Mapping, name: str, path: str, errs: Errs) -> int | None:
    return typed(obj, name, int, path, errs)


def items(value: Any, path: str, errs: Errs) -> Iterable[tuple[int, str, Obj]]:
    """(i, path[i], element) for the objects of a list; other elements become errors, and
    so does a value that is not a list at all (None is an empty list)."""
    if value is not None and not isinstance(value, list):
        errs.append(invalid(path, value, "must be of type array"))
    for i, element in enumerate(value if isinstance(value, list) else []):
        p = index(path, i)
        if isinstance(element, dict):
            yield i, p, element
        else:
            errs.append(invalid(p, element, "must be of type object"))


def string_map(value: Any, path: str, errs: Errs) -> dict[str, str]:
    """A map of strings (labels, annotations, data); non-string values become errors."""
    if value is None:
        return {}
    if not isinstance(value, dict):
        errs.append(invalid(path, value, "must be of type object"))
        return {}
    out = {}
    for k, v in value.items():
        if isinstance(v, str):
            out[k] = v
        else:
            errs.append(invalid(key(path, k), v, "must be of type string"))
    return out


def dig(obj: Any, *steps: str) -> Any:
    """obj[a][b]... or None when any step is missing or not an object: for reads that
    other checks already report on."""
    for step in steps:
        if not isinstance(obj, dict):
            return None
        obj = obj.get(step)
    return obj


def as_list(value: Any) -> list:
    return value if isinstance(value, list) else []


# --- small rules ------------------------------------------------------------------------------

def nonnegative(value: Any, path: str) -> Errs:
    if _of_type(value, int) and value < 0:
        return [invalid(path, value, NEGATIVE)]
    return []


def nonnegative_field(obj: Mapping, name: str, path: str, errs: Errs) -> int | None:
    value = get_int(obj, name, path, errs)
    errs += nonnegative(value, child(path, name))
    return value


def immutable(new: Any, old: Any, path: str) -> Errs:
    return [] if new == old else [invalid(path, new, IMMUTABLE)]


def one_of(value: Any, allowed: Iterable[str], path: str, *, required_: bool = True) -> Errs:
    """Required when empty (if `required_`), NotSupported when not one of `allowed`."""
    allowed = list(allowed)
    if value in (None, ""):
        return [required(path)] if required_ else []
    if value not in allowed:
        return [not_supported(path, value, allowed)]
    return []


def messages(path: str, value: Any, msgs: Iterable[str]) -> Errs:
    return [invalid(path, value, msg) for msg in msgs]


def dns1123_label(value: str, path: str) -> Errs:
    return messages(path, value, names.is_dns1123_label(value))


def dns1123_subdomain(value: str, path: str) -> Errs:
    return messages(path, value, names.is_dns1123_subdomain(value))


def qualified_name(value: str, path: str) -> Errs:
    return messages(path, value, names.is_qualified_name(value))


def ip_address(value: Any, path: str) -> Errs:
    try:
        if not isinstance(value, str):
            raise ValueError(value)  # ipaddress would take an int as an address
        ipaddress.ip_address(value)
    except ValueError:
        return [invalid(path, value, "must be a valid IP address, (e.g. 10.9.8.7 or 2001:db8::ffff)")]
    return []


def cidr(value: Any, path: str) -> Errs:
    try:
        if not isinstance(value, str) or "/" not in value:
            raise ValueError(value)
        ipaddress.ip_network(value, strict=False)
    except ValueError:
        return [invalid(path, value, "must be a valid CIDR value, (e.g. 10.9.8.0/24 or 2001:db8::/64)")]
    return []


def non_special_ip(value: Any, path: str) -> Errs:
    """Endpoints and external IPs may not be unspecified, loopback or link-local."""
    try:
        if not isinstance(value, str):
            raise ValueError(value)
        ip = ipaddress.ip_address(value)
    except ValueError:
        return [invalid(path, value, "must be a valid IP address")]
    errs = []
    if ip.is_unspecified:
        errs.append(invalid(path, value, f"may not be unspecified ({value})"))
    if ip.is_loopback:
        errs.append(invalid(path, value, "may not be in the loopback range (127.0.0.0/8, ::1/128)"))
    if ip.is_link_local and not ip.is_multicast:
        errs.append(invalid(path, value,
                            "may not be in the link-local range (169.254.0.0/16, fe80::/10)"))
    if ip.is_multicast and (ip in ipaddress.ip_network("224.0.0.0/24")
                            or ip in ipaddress.ip_network("ff02::/16")):
        errs.append(invalid(path, value, "may not be in the link-local multicast range "
                                         "(224.0.0.0/24, ff02::/10)"))
    return errs


def port_number(value: Any, path: str) -> Errs:
    if not _of_type(value, int):
        return [invalid(path, value, "must be of type integer")]
    return messages(path, value, names.is_port_number(value))


def port_num_or_name(value: Any, path: str) -> Errs:
    """An IntOrString port: a number 1-65535 or an IANA_SVC_NAME."""
    if isinstance(value, str):
        return messages(path, value, names.is_port_name(value))
    return port_number(value, path)


# --- labels, annotations, metadata -------------------------------------------------------------

def validate_labels(value: Any, path: str) -> Errs:
    errs: Errs = []
    for k, v in string_map(value, path, errs).items():
        errs += messages(path, k, names.is_qualified_name(k))
        errs += messages(path, v, names.is_label_value(v))
    return errs


def validate_annotations(value: Any, path: str) -> Errs:
    errs: Errs = []
    annotations = string_map(value, path, errs)
    for k in annotations:
        # Annotation keys are qualified names where case does not matter.
        errs += messages(path, k, names.is_qualified_name(k.lower()))
    if names.check_annotations_size(annotations):
        errs.append(FieldError("FieldValueTooLong", path,
                               f"must have at most {names.TOTAL_ANNOTATION_SIZE_LIMIT} bytes"))
    return errs


def _split_api_version(api_version: str) -> tuple[str, str]:
    if api_version.count("/") > 1:
        return "", ""
    group, _, version = api_version.rpartition("/")
    return group, version


def validate_owner_references(value: Any, path: str) -> Errs:
    errs: Errs = []
    controller = ""
    for _, _p, ref in items(value, path, errs):
        # Kubernetes reports these at the list's path, without the index.
        api_version = ref.get("apiVersion") if isinstance(ref.get("apiVersion"), str) else ""
        kind = ref.get("kind") if isinstance(ref.get("kind"), str) else ""
        group, version = _split_api_version(api_version)
        if not version:
            errs.append(invalid(child(path, "apiVersion"), api_version, "version must not be empty"))
        if not kind:
            errs.append(invalid(child(path, "kind"), kind, "must not be empty"))
        if not ref.get("name"):
            errs.append(invalid(child(path, "name"), ref.get("name", ""), "must not be empty"))
        if not ref.get("uid"):
            errs.append(invalid(child(path, "uid"), ref.get("uid", ""), "must not be empty"))
        if (api_version, kind) in BANNED_OWNERS:
            errs.append(invalid(path, ref, f"{group}/{version}, Kind={kind} is disallowed from "
                                           "being an owner"))
        if ref.get("controller") is True:
            current = f"{kind}/{ref.get('name', '')}"
            if controller:
                errs.append(invalid(path, value, "Only one reference can have Controller set to "
                                                 f'true. Found "true" in references for '
                                                 f"{controller} and {current}"))
            else:
                controller = current
    return errs


def validate_finalizers(value: Any, path: str, *, indexed: bool = True) -> Errs:
    """Qualified names, and a bare name must be one Kubernetes knows. `indexed` says whether
    the second rule reports at finalizers[i] (metadata) or at the list (a namespace's spec)."""
    errs: Errs = []
    finalizers = value if isinstance(value, list) else []
    if value is not None and not isinstance(value, list):
        errs.append(invalid(path, value, "must be of type array"))
    for i, finalizer in enumerate(finalizers):
        if not isinstance(finalizer, str):
            errs.append(invalid(index(path, i), finalizer, "must be of type string"))
            continue
        errs += messages(path, finalizer, names.is_qualified_name(finalizer))
        if "/" not in finalizer and finalizer not in STANDARD_FINALIZERS:
            errs.append(invalid(index(path, i) if indexed else path, finalizer, "name is neither a standard finalizer "
                                                           "name nor is it fully qualified"))
    if "orphan" in finalizers and "foregroundDeletion" in finalizers:
        errs.append(invalid(path, finalizers,
                            "finalizer orphan and foregroundDeletion cannot be both set"))
    return errs


def validate_object_meta(obj: Obj, *, namespaced: bool, name_fn: NameFn,
                         path: str = "metadata") -> Errs:
    """ObjectMeta on create: name (or generateName), namespace, labels, annotations, owners."""
    errs: Errs = []
    meta = get_map(obj, "metadata", "", errs)
    name = get_str(meta, "name", path, errs)
    generate_name = get_str(meta, "generateName", path, errs)
    if generate_name:
        errs += messages(child(path, "generateName"), generate_name, name_fn(generate_name, True))
    if name:
        errs += messages(child(path, "name"), name, name_fn(name, False))
    elif not generate_name:
        errs.append(required(child(path, "name"), "name or generateName is required"))
    namespace = get_str(meta, "namespace", path, errs)
    if namespaced:
        if not namespace:
            errs.append(required(child(path, "namespace")))
        else:
            errs += messages(child(path, "namespace"), namespace,
                             names.name_is_dns_label(namespace, False))
    elif namespace:
        errs.append(forbidden(child(path, "namespace"), "not allowed on this type"))
    nonnegative_field(meta, "generation", path, errs)
    errs += validate_labels(meta.get("labels"), child(path, "labels"))
    errs += validate_annotations(meta.get("annotations"), child(path, "annotations"))
    errs += validate_owner_references(meta.get("ownerReferences"), child(path, "ownerReferences"))
    errs += validate_finalizers(meta.get("finalizers"), child(path, "finalizers"))
    return errs


def validate_object_meta_update(new: Obj, old: Obj, path: str = "metadata") -> Errs:
    """What an update may not change in ObjectMeta.

    Like the apiserver, a missing uid or creationTimestamp in the new object means "keep
    the stored one" (rest.BeforeUpdate copies them), so only a different value is an error.
    resourceVersion preconditions are the store's business, not validation's.
    """
    errs: Errs = []
    meta = new.get("metadata") if isinstance(new.get("metadata"), dict) else {}
    old_meta = old.get("metadata") if isinstance(old.get("metadata"), dict) else {}
    for field_ in ("name", "namespace"):
        errs += immutable(meta.get(field_, ""), old_meta.get(field_, ""), child(path, field_))
    for field_ in ("uid", "creationTimestamp"):
        if meta.get(field_) not in (None, "") and old_meta.get(field_) not in (None, ""):
            errs += immutable(meta[field_], old_meta[field_], child(path, field_))
    generation, old_generation = meta.get("generation"), old_meta.get("generation")
    if _of_type(generation, int) and _of_type(old_generation, int) and generation < old_generation:
        errs.append(invalid(child(path, "generation"), generation, "must not be decremented"))
    if old_meta.get("deletionTimestamp"):
        new_finalizers = meta.get("finalizers") if isinstance(meta.get("finalizers"), list) else []
        old_finalizers = as_list(old_meta.get("finalizers"))
        added = sorted({f for f in new_finalizers if isinstance(f, str)}
                       - {f for f in old_finalizers if isinstance(f, str)})
        if added:
            shown = "[" + ", ".join(f'"{f}"' for f in added) + "]"
            errs.append(forbidden(child(path, "finalizers"),
                                  "no new finalizers can be added if the object is being deleted, "
                                  f"found new finalizers {shown}"))
    return errs


# --- label selectors (metav1.LabelSelector) -------------------------------------------------

LABEL_SELECTOR_OPERATORS = ("In", "NotIn", "Exists", "DoesNotExist")


def validate_label_selector(value: Any, path: str) -> Errs:
    """ValidateLabelSelector: matchLabels as labels, each matchExpression well formed."""
    errs: Errs = []
    if value is None:
        return errs
    if not isinstance(value, dict):
        return [invalid(path, value, "must be of type object")]
    errs += validate_labels(value.get("matchLabels"), child(path, "matchLabels"))
    for _, p, expr in items(value.get("matchExpressions"), child(path, "matchExpressions"), errs):
        operator = expr.get("operator")
        values = expr.get("values") if isinstance(expr.get("values"), list) else []
        if operator in ("In", "NotIn"):
            if not values:
                errs.append(required(child(p, "values"),
                                     "must be specified when `operator` is 'In' or 'NotIn'"))
        elif operator in ("Exists", "DoesNotExist"):
            if values:
                errs.append(forbidden(child(p, "values"), "may not be specified when `operator` "
                                                          "is 'Exists' or 'DoesNotExist'"))
        else:
            errs.append(invalid(child(p, "operator"), operator, "not a valid selector operator"))
        k = expr.get("key") if isinstance(expr.get("key"), str) else ""
        errs += messages(child(p, "key"), k, names.is_qualified_name(k))
        for i, v in enumerate(values):
            if not isinstance(v, str):
                errs.append(invalid(index(child(p, "values"), i), v, "must be of type string"))
                continue
            errs += messages(index(child(p, "values"), i), v, names.is_label_value(v))
    return errs


def selector_is_empty(selector: Any) -> bool:
    return isinstance(selector, dict) and not selector.get("matchLabels") \
        and not selector.get("matchExpressions")
