"""Avro types for the decoded-sFlow data model, derived from its msgspec classes.

Used by ``python -m schemas.generate`` to write the .avsc files; at run time the .avsc files
are the contract, this module is not imported by producers or consumers.
"""

from __future__ import annotations

from typing import Any

import msgspec.inspect as mi

NAMESPACE = "sflowpipe"

# Tuples in the model that are records on the wire: (record name, field names and types)
TUPLE_RECORDS: dict[tuple, tuple[str, list[tuple[str, Any]]]] = {}


def _tuple_record(items: tuple, named: dict) -> Any:
    """A fixed-length tuple in the model -> a record (AS path segment, VLAN tag)."""
    kinds = tuple(type(t).__name__ for t in items)
    if kinds == ("IntType", "IntType"):
        name, fields = "VlanTag", [("vlan", "long"), ("priority", "long")]
    elif kinds == ("IntType", "VarTupleType"):
        name, fields = "AsPathSegment", [("segment_type", "long"), ("asns", {"type": "array", "items": "long"})]
    else:
        raise TypeError(f"no Avro record defined for tuple {kinds}")
    if name in named:
        return f"{NAMESPACE}.{name}"
    named[name] = True
    return {"type": "record", "name": name, "namespace": NAMESPACE,
            "fields": [{"name": n, "type": t} for n, t in fields]}


def avro_type(t: mi.Type, named: dict) -> Any:
    """The Avro schema of one msgspec type; ``named`` tracks record names already defined."""
    if isinstance(t, mi.IntType):
        return "long"
    if isinstance(t, mi.FloatType):
        return "double"
    if isinstance(t, mi.StrType):
        return "string"
    if isinstance(t, mi.BytesType):
        return "bytes"
    if isinstance(t, mi.BoolType):
        return "boolean"
    if isinstance(t, mi.VarTupleType):
        return {"type": "array", "items": avro_type(t.item_type, named)}
    if isinstance(t, mi.TupleType):
        return _tuple_record(t.item_types, named)
    if isinstance(t, mi.StructType):
        return record_schema(t.cls, named, t)
    if isinstance(t, mi.UnionType):
        branches = [x for x in t.types if not isinstance(x, mi.NoneType)]
        if len(branches) != 1 or len(branches) == len(t.types):
            raise TypeError(f"unsupported union {t}")
        return ["null", avro_type(branches[0], named)]
    raise TypeError(f"no Avro type for {t!r}")


def record_schema(cls: type, named: dict, info: mi.StructType | None = None) -> Any:
    """A msgspec Struct class as an Avro record (a name reference if already defined)."""
    name = cls.__name__
    if name in named:
        return f"{NAMESPACE}.{name}"
    named[name] = True
    info = info or mi.type_info(cls)
    fields = []
    for f in info.fields:
        field: dict[str, Any] = {"name": f.name, "type": avro_type(f.type, named)}
        if f.default is None:
            field["default"] = None
        elif f.default == ():
            field["default"] = []
        fields.append(field)
    doc = (cls.__doc__ or "").strip().splitlines()
    rec = {"type": "record", "name": name, "namespace": NAMESPACE, "fields": fields}
    if doc:
        rec["doc"] = doc[0]
    return rec


def union_of(classes: list[type], named: dict) -> list:
    """The Avro union of several record classes (a sample's list of records)."""
    return [record_schema(c, named) for c in classes]


_TUPLE_FIELDS = {
    ("IntType", "IntType"): ("vlan", "priority"),
    ("IntType", "VarTupleType"): ("segment_type", "asns"),
}
_converters: dict[type, list] = {}


def _converter(t: mi.Type):
    if isinstance(t, mi.StructType):
        return to_datum
    if isinstance(t, mi.UnionType):
        inner = [x for x in t.types if not isinstance(x, mi.NoneType)][0]
        conv = _converter(inner)
        return None if conv is None else (lambda v: None if v is None else conv(v))
    if isinstance(t, mi.VarTupleType):
        item = t.item_type
        if isinstance(item, mi.TupleType):
            names = _TUPLE_FIELDS[tuple(type(x).__name__ for x in item.item_types)]
            return lambda v: [{names[0]: a, names[1]: list(b) if isinstance(b, tuple) else b} for a, b in v]
        conv = _converter(item)
        if conv is None:
            return list
        return lambda v: [conv(x) for x in v]
    if isinstance(t, mi.AnyType):
        return lambda v: [to_datum(x) for x in v] if isinstance(v, tuple) else to_datum(v)
    return None


def to_datum(obj: Any) -> Any:
    """A model object as a fastavro datum: a dict per record, lists for tuples.

    Each record dict names its type in ``"-type"`` (fastavro's way to pick a union branch
    without guessing); Avro writers ignore the extra key elsewhere."""
    cls = type(obj)
    convs = _converters.get(cls)
    if convs is None:
        convs = [(f.name, _converter(f.type)) for f in mi.type_info(cls).fields]
        _converters[cls] = convs
    d: dict[str, Any] = {"-type": f"{NAMESPACE}.{cls.__name__}"}
    for name, conv in convs:
        v = getattr(obj, name)
        d[name] = v if conv is None else conv(v)
    return d
