"""From msgspec types to the JSON Schema of an OpenAPI document.

`SchemaBook` turns every type the handlers declare into JSON Schema with
`msgspec.json.schema_components`: the document is derived from the same types the
handlers decode and send, not written a second time.

Replies are views of the actors' messages sent without their `msgspec` tag (`to_json()`
drops `msg_type`), with every field present: their schemas are made to match, tag removed
and every field required. `Derived` names a reply that is a view with fields added or
dropped (a user with `user` nested in it, a dead letter without its envelope), `page(...)`
the `{"items": [...], "next_cursor": ...}` wrapper, and `Raw` a schema that no Struct can
say (preferences keyed by category). `query_parameters` reads a query Struct as
`in: query` parameters.
"""

from __future__ import annotations

import copy
from collections.abc import Iterable, Iterator, Mapping
from typing import Any

import msgspec
import msgspec.inspect as mi

from splitgo.web.declare import Content, Derived, Page, Raw

REF = "#/components/schemas/{name}"


def _walk_structs(info: mi.Type, found: dict[type, None]) -> None:
    if isinstance(info, mi.StructType):
        if info.cls in found:
            return
        found[info.cls] = None
        for struct_field in info.fields:
            _walk_structs(struct_field.type, found)
        return
    if isinstance(info, mi.Metadata):
        _walk_structs(info.type, found)
        return
    for name in ("item_type", "key_type", "value_type"):
        inner = getattr(info, name, None)
        if isinstance(inner, mi.Type):
            _walk_structs(inner, found)
    for name in ("types", "item_types"):
        for inner in getattr(info, name, ()) or ():
            if isinstance(inner, mi.Type):
                _walk_structs(inner, found)


def struct_classes(types: Iterable[Any]) -> list[type]:
    """Every Struct class reachable from `types`, in the order first met."""
    found: dict[type, None] = {}
    listed = list(types)
    if listed:
        for info in mi.multi_type_info(listed):
            _walk_structs(info, found)
    return list(found)


def shape_types(shape: Any) -> Iterator[Any]:
    """The msgspec types a reply or body shape names."""
    if shape is None:
        return
    if isinstance(shape, Content):
        yield from shape_types(shape.type)
    elif isinstance(shape, Derived):
        yield shape.base
        for added in shape.add.values():
            yield from shape_types(added)
    elif isinstance(shape, Raw):
        for referenced in shape.refs.values():
            yield from shape_types(referenced)
    elif isinstance(shape, Page):
        yield from shape_types(shape.item)
    else:
        yield shape


def _derived_in(shape: Any) -> Iterator[Derived]:
    if isinstance(shape, Content):
        yield from _derived_in(shape.type)
    elif isinstance(shape, Derived):
        yield shape
        for added in shape.add.values():
            yield from _derived_in(added)
    elif isinstance(shape, Raw):
        for referenced in shape.refs.values():
            yield from _derived_in(referenced)
    elif isinstance(shape, Page):
        yield from _derived_in(shape.item)


def untagged(schema: dict[str, Any], tag_field: str) -> dict[str, Any]:
    """A tagged Struct's schema as the edge sends it: without the tag."""
    schema = copy.deepcopy(schema)
    schema.get("properties", {}).pop(tag_field, None)
    if "required" in schema:
        schema["required"] = [name for name in schema["required"] if name != tag_field]
    return schema


def _strip_discriminators(value: Any, tag_fields: set[str]) -> None:
    """Tagged unions name their tag as discriminator; the edge sends none."""
    if isinstance(value, dict):
        discriminator = value.get("discriminator")
        if isinstance(discriminator, dict) and discriminator.get("propertyName") in tag_fields:
            del value["discriminator"]
        for inner in value.values():
            _strip_discriminators(inner, tag_fields)
    elif isinstance(value, list):
        for inner in value:
            _strip_discriminators(inner, tag_fields)


class SchemaBook:
    """The components, and each declared type's schema (a `$ref` for Structs)."""

    def __init__(self, request_types: Iterable[Any], reply_shapes: Iterable[Any]) -> None:
        shapes = list(reply_shapes)
        requests = list(dict.fromkeys(_hashable(request_types)))
        replies = list(dict.fromkeys(_hashable(t for s in shapes for t in shape_types(s))))
        request_structs = struct_classes(requests)
        reply_structs = struct_classes(replies)
        ordered = list(dict.fromkeys([*requests, *replies, *request_structs, *reply_structs]))
        schemas, components = msgspec.json.schema_components(ordered, ref_template=REF)
        self._schemas: dict[Any, dict[str, Any]] = dict(zip(ordered, schemas, strict=True))
        self.components: dict[str, dict[str, Any]] = components
        tag_fields: set[str] = set()
        for cls in [*request_structs, *reply_structs]:
            name = self.component_name(cls)
            config = cls.__struct_config__  # type: ignore[attr-defined]
            if config.tag_field is not None:
                tag_fields.add(config.tag_field)
                self.components[name] = untagged(self.components[name], config.tag_field)
            if cls in reply_structs and cls not in request_structs and not config.omit_defaults:
                # plain()/to_json()/asdict() send every field, defaults too
                properties = self.components[name].get("properties", {})
                self.components[name]["required"] = list(properties)
        _strip_discriminators(self.components, tag_fields)
        for shape in shapes:
            for derived in _derived_in(shape):
                self._derive(derived)

    def component_name(self, cls: Any) -> str:
        ref = self._schemas[cls]["$ref"]
        assert isinstance(ref, str)
        return ref.rsplit("/", 1)[-1]

    def _derive(self, derived: Derived) -> None:
        base = copy.deepcopy(self.components[self.component_name(derived.base)])
        properties: dict[str, Any] = base.setdefault("properties", {})
        required: list[str] = base.setdefault("required", [])
        for name in derived.drop:
            properties.pop(name, None)
            if name in required:
                required.remove(name)
        for name, shape in derived.add.items():
            properties[name] = self.schema(shape)
            if name not in required:
                required.append(name)
        base["title"] = derived.name
        if derived.description:
            base["description"] = derived.description
        self.components[derived.name] = base

    def schema(self, shape: Any) -> dict[str, Any]:
        """The schema of a declared type or shape (Derived ones by `$ref`)."""
        if isinstance(shape, Content):
            return self.schema(shape.type) if shape.type is not None else {}
        if isinstance(shape, Derived):
            return {"$ref": REF.format(name=shape.name)}
        if isinstance(shape, Page):
            return {
                "type": "object",
                "properties": {
                    "items": {"type": "array", "items": self.schema(shape.item)},
                    "next_cursor": {"anyOf": [{"type": "string"}, {"type": "null"}]},
                },
                "required": ["items", "next_cursor"],
            }
        if isinstance(shape, Raw):
            refs = {name: self.schema(t) for name, t in shape.refs.items()}
            filled: dict[str, Any] = _fill_refs(copy.deepcopy(dict(shape.schema)), refs)
            return filled
        return copy.deepcopy(self._schemas[shape])


def _hashable(types: Iterable[Any]) -> Iterator[Any]:
    for t in types:
        hash(t)  # every declared type is a key of the book
        yield t


def _fill_refs(value: Any, refs: Mapping[str, dict[str, Any]]) -> Any:
    """Replace `{"$ref": name}` leaves of a Raw schema with the named type's schema."""
    if isinstance(value, dict):
        ref = value.get("$ref")
        if isinstance(ref, str) and ref in refs and len(value) == 1:
            return refs[ref]
        return {key: _fill_refs(inner, refs) for key, inner in value.items()}
    if isinstance(value, list):
        return [_fill_refs(inner, refs) for inner in value]
    return value


def _without_null(schema: dict[str, Any]) -> dict[str, Any]:
    """A query parameter is absent rather than null."""
    options = schema.get("anyOf")
    if isinstance(options, list):
        kept = [option for option in options if option != {"type": "null"}]
        rest = {key: value for key, value in schema.items() if key not in ("anyOf", "default")}
        if len(kept) == 1:
            return {**kept[0], **rest}
        return {**rest, "anyOf": kept}
    return schema


def query_parameters(query: Any) -> list[dict[str, Any]]:
    """A query Struct's fields as `in: query` parameters."""
    if query is None:
        return []
    (ref,), components = msgspec.json.schema_components([query], ref_template=REF)
    struct = components[ref["$ref"].rsplit("/", 1)[-1]]
    required = set(struct.get("required", []))
    parameters = []
    for name, schema in struct.get("properties", {}).items():
        schema = _without_null(dict(schema))
        if schema.get("default") == "":
            del schema["default"]
        description = schema.pop("description", None)
        parameter: dict[str, Any] = {
            "name": name,
            "in": "query",
            "required": name in required,
            "schema": schema,
        }
        if description:
            parameter["description"] = description
        parameters.append(parameter)
    return parameters
