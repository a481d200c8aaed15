"""Typed records for the settings and the definitions: a class of annotated fields, validated on
construction, with the few operations sflowpipe uses (``model_validate``, ``model_dump``,
``model_copy``, ``model_fields``, ``model_fields_set``, ``model_extra``).

Why not pydantic: every command reads its settings before it does anything, and importing pydantic
and building the core schemas of the 25 settings classes took ~0.2 s of CPU (README "Start-up",
issue 13's 0.3 s budget); this module imports in ~1 ms and validates the whole settings tree in
~2 ms. The names and the conversions follow pydantic's lax mode, so its users find what they know:

- ``int``: an int, an integral float, or a string of one; ``float``: a number or a string of one
  (``nan``/``inf`` refused where ``allow_inf_nan`` is off); ``bool``: a bool, 0/1, or
  true/false/yes/no/on/off/t/f/y/n/1/0 as a string; ``str``: a string only; ``Literal``: one of its
  values; ``X | None``, unions (first member that takes the value), ``list[X]``, ``dict[K, V]``,
  nested records, ``SecretStr``.
- ``Field(default, ge=, gt=, le=, lt=, alias=, description=, default_factory=, allow_inf_nan=)``.
- ``model_config``: ``extra`` ("ignore", "forbid", "allow"), ``populate_by_name``, ``allow_inf_nan``.
- ``field_validator(name, ..., mode="after"|"before")`` and ``model_validator(mode=...)``: a
  ``ValueError`` raised in one is that field's (or the record's) error.
- A ``ValidationError`` lists every fault (``errors()``: ``loc``, ``msg``, ``type``) with
  pydantic's wording, so a fault reads the same as before.
"""

from __future__ import annotations

import copy
import math
import sys
import types
from typing import Any, Literal, Union, get_args, get_origin

_MISSING: Any = type("_Missing", (), {"__repr__": lambda self: "MISSING"})()
_TRUE = frozenset({"1", "true", "t", "yes", "y", "on"})
_FALSE = frozenset({"0", "false", "f", "no", "n", "off"})


class SecretStr:
    """A string that does not show itself: ``str()`` and ``repr()`` are masked,
    ``get_secret_value()`` gives it."""

    __slots__ = ("_value",)

    def __init__(self, value: str) -> None:
        self._value = value

    def get_secret_value(self) -> str:
        return self._value

    def __str__(self) -> str:
        return "**********" if self._value else ""

    def __repr__(self) -> str:
        return f"SecretStr('{self}')"

    def __eq__(self, other: object) -> bool:
        return isinstance(other, SecretStr) and other._value == self._value

    def __hash__(self) -> int:
        return hash(self._value)

    def __len__(self) -> int:
        return len(self._value)

    def __reduce__(self):
        return SecretStr, (self._value,)


class ValidationError(ValueError):
    """Every fault found in one validation: ``errors()`` lists them (``loc``, ``msg``, ``type``)."""

    def __init__(self, title: str, errors: list[dict]) -> None:
        self.title = title
        self._errors = errors
        super().__init__(str(self))

    def errors(self, include_url: bool = False, include_input: bool = False) -> list[dict]:
        return [dict(e) for e in self._errors]

    def error_count(self) -> int:
        return len(self._errors)

    def __str__(self) -> str:
        n = len(self._errors)
        lines = [f"{n} validation error{'s' if n != 1 else ''} for {self.title}"]
        for e in self._errors:
            lines.append(".".join(map(str, e["loc"])) or self.title)
            lines.append(f"  {e['msg']} [type={e['type']}]")
        return "\n".join(lines)


class _Fault(Exception):
    """One fault while converting a value (collected into a ValidationError)."""

    def __init__(self, type_: str, msg: str) -> None:
        self.type = type_
        self.msg = msg


class FieldInfo:
    """One field: its default (or factory), alias, bounds and description; ``annotation`` is the
    resolved type once the class was first used."""

    __slots__ = ("default", "default_factory", "alias", "description", "ge", "gt", "le", "lt", "allow_inf_nan",
                 "annotation")

    def __init__(self, default: Any = _MISSING, *, default_factory: Any = None, alias: str | None = None,
                 description: str | None = None, ge: float | None = None, gt: float | None = None,
                 le: float | None = None, lt: float | None = None, allow_inf_nan: bool | None = None) -> None:
        self.default = default
        self.default_factory = default_factory
        self.alias = alias
        self.description = description
        self.ge, self.gt, self.le, self.lt = ge, gt, le, lt
        self.allow_inf_nan = allow_inf_nan
        self.annotation: Any = None

    def is_required(self) -> bool:
        return self.default is _MISSING and self.default_factory is None

    def get_default(self) -> Any:
        if self.default_factory is not None:
            return self.default_factory()
        d = self.default
        return d if isinstance(d, (str, int, float, bool, type(None), SecretStr, Model, tuple, frozenset)) \
            else copy.deepcopy(d)


def Field(default: Any = _MISSING, **kwargs: Any) -> Any:  # noqa: N802 (pydantic's spelling)
    """A field's default and constraints (see the module docstring)."""
    return FieldInfo(default, **kwargs)


def ConfigDict(**kwargs: Any) -> dict:  # noqa: N802
    return dict(kwargs)


def field_validator(*names: str, mode: str = "after"):
    """Mark a classmethod ``(cls, value) -> value`` as the validator of ``names``."""
    def mark(fn):
        fn.__typed_validator__ = ("field", names, mode)
        return fn
    return mark


def model_validator(*, mode: str):
    """``mode="before"``: a classmethod ``(cls, data) -> data``; ``"after"``: a method ``(self) -> self``."""
    def mark(fn):
        fn.__typed_validator__ = ("model", (), mode)
        return fn
    return mark


class Model:
    """Base of a typed record (see the module docstring)."""

    model_config: dict = {}
    model_fields: dict[str, FieldInfo] = {}
    __typed_resolved__ = False

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        fields: dict[str, FieldInfo] = {}
        for base in reversed(cls.__mro__[1:]):
            if issubclass(base, Model) and base is not Model:
                fields.update({n: copy.copy(f) for n, f in base.model_fields.items()})
        for name in cls.__dict__.get("__annotations__", {}):
            if name.startswith("_") or name in ("model_config", "model_fields"):
                continue
            value = cls.__dict__.get(name, _MISSING)
            info = value if isinstance(value, FieldInfo) else FieldInfo(value)
            fields[name] = info
            if value is not _MISSING:
                delattr(cls, name)  # an instance keeps its values in its own __dict__
        cls.model_fields = fields
        config: dict = {}
        validators: dict[str, list] = {"before": [], "after": []}
        field_validators: dict[tuple[str, str], list] = {}
        for klass in reversed(cls.__mro__):
            config.update(klass.__dict__.get("model_config", {}))
            for attr in klass.__dict__.values():
                fn = getattr(attr, "__func__", attr)  # a classmethod's function
                mark = getattr(attr, "__typed_validator__", None) or getattr(fn, "__typed_validator__", None)
                if mark is None:
                    continue
                kind, names, mode = mark
                if kind == "model":
                    validators[mode].append(fn)
                else:
                    for n in names:
                        field_validators.setdefault((n, mode), []).append(fn)
        cls.model_config = config
        cls.__typed_validators__ = validators
        cls.__typed_field_validators__ = field_validators
        cls.__typed_resolved__ = False
        try:
            cls._resolve()
        except NameError:  # a type defined further down the module: resolved when first used
            pass

    @classmethod
    def _resolve(cls) -> None:
        """The annotations as types (they are strings under ``from __future__ import annotations``)."""
        for klass in reversed(cls.__mro__):  # each class's annotations in its own module
            if klass is Model or not (isinstance(klass, type) and issubclass(klass, Model)):
                continue
            namespace = vars(sys.modules[klass.__module__])
            for name, ann in klass.__dict__.get("__annotations__", {}).items():
                if name in cls.model_fields:
                    f = cls.model_fields[name]
                    f.annotation = eval(ann, namespace) if isinstance(ann, str) else ann
                    if f.annotation is float and type(f.default) is int:  # `= 50` of a float field is 50.0
                        f.default = float(f.default)
        cls.__typed_resolved__ = True

    # ------------------------------------------------------------------ building

    def __init__(self, **data: Any) -> None:
        errors: list[dict] = []
        self._fill(data, (), errors)
        if errors:
            raise ValidationError(type(self).__name__, errors)

    @classmethod
    def model_validate(cls, obj: Any) -> "Model":
        if isinstance(obj, cls):
            return obj
        if not isinstance(obj, dict):
            raise ValidationError(cls.__name__, [{"loc": (), "type": "model_type",
                                                  "msg": f"Input should be a valid dictionary or instance of {cls.__name__}"}])
        errors: list[dict] = []
        new = cls._build(obj, (), errors)
        if errors:
            raise ValidationError(cls.__name__, errors)
        return new

    @classmethod
    def _build(cls, data: dict, loc: tuple, errors: list[dict]) -> "Model | None":
        new = cls.__new__(cls)
        before = len(errors)
        new._fill(data, loc, errors)
        return new if len(errors) == before else None

    def _fill(self, data: dict, loc: tuple, errors: list[dict]) -> None:
        cls = type(self)
        if not cls.__typed_resolved__:
            cls._resolve()
        for fn in cls.__typed_validators__["before"]:
            try:
                data = fn(cls, data)
            except ValueError as e:
                errors.append(_error(loc, "value_error", f"Value error, {e}"))
                return
        if not isinstance(data, dict):
            errors.append(_error(loc, "model_type", f"Input should be a valid dictionary or instance of {cls.__name__}"))
            return
        config = cls.model_config
        by_name = config.get("populate_by_name", False)
        values: dict[str, Any] = {}
        fields_set: set[str] = set()
        taken: set[str] = set()
        before = len(errors)
        for name, f in cls.model_fields.items():
            key = f.alias if f.alias is not None else name
            if key in data:
                raw = data[key]
            elif by_name and f.alias is not None and name in data:
                key, raw = name, data[name]
            else:
                if f.is_required():
                    errors.append(_error(loc + (key,), "missing", "Field required"))
                else:
                    values[name] = f.get_default()
                continue
            taken.add(key)
            fields_set.add(name)
            try:
                for fn in cls.__typed_field_validators__.get((name, "before"), ()):
                    raw = fn(cls, raw)
                value = _convert(f.annotation, raw, loc + (key,), errors, f, config)
                if value is _MISSING:
                    continue
                for fn in cls.__typed_field_validators__.get((name, "after"), ()):
                    value = fn(cls, value)
            except ValueError as e:
                errors.append(_error(loc + (key,), "value_error", f"Value error, {e}"))
                continue
            values[name] = value
        extra = {k: v for k, v in data.items() if k not in taken}
        mode = config.get("extra", "ignore")
        if extra and mode == "forbid":
            for k in extra:
                errors.append(_error(loc + (k,), "extra_forbidden", "Extra inputs are not permitted"))
        d = self.__dict__
        d.update(values)
        d["__fields_set__"] = fields_set
        d["__extra__"] = extra if mode == "allow" else None
        if mode == "allow":
            d.update(extra)
        if len(errors) > before:
            return
        for fn in cls.__typed_validators__["after"]:
            try:
                fn(self)
            except ValueError as e:
                errors.append(_error(loc, "value_error", f"Value error, {e}"))
                return

    # ------------------------------------------------------------------ using

    @property
    def model_fields_set(self) -> set[str]:
        return self.__dict__["__fields_set__"]

    @property
    def model_extra(self) -> dict | None:
        return self.__dict__["__extra__"]

    def model_copy(self, update: dict | None = None, deep: bool = False) -> "Model":
        """A copy with ``update``'s values (not validated, as pydantic's)."""
        new = copy.deepcopy(self) if deep else copy.copy(self)
        if not deep:
            new.__dict__ = dict(self.__dict__)
            new.__dict__["__fields_set__"] = set(self.model_fields_set)
        for k, v in (update or {}).items():
            new.__dict__[k] = v
            if k in type(self).model_fields:
                new.__dict__["__fields_set__"].add(k)
            elif new.__dict__["__extra__"] is not None:
                new.__dict__["__extra__"] = {**new.__dict__["__extra__"], k: v}
        return new

    def model_dump(self, *, mode: str = "python", by_alias: bool = False, exclude_none: bool = False,
                   exclude_unset: bool = False) -> dict:
        """The record as plain data; ``mode="json"``: secrets masked, tuples as lists."""
        opts = (mode, by_alias, exclude_none, exclude_unset)
        out: dict[str, Any] = {}
        fields_set = self.model_fields_set
        for name, f in type(self).model_fields.items():
            if exclude_unset and name not in fields_set:
                continue
            value = self.__dict__[name]
            if exclude_none and value is None:
                continue
            out[f.alias if by_alias and f.alias else name] = _dump(value, opts)
        for k, v in (self.model_extra or {}).items():
            if not (exclude_none and v is None):
                out[k] = _dump(v, opts)
        return out

    def __eq__(self, other: object) -> bool:
        if type(other) is not type(self):
            return NotImplemented
        names = type(self).model_fields
        return all(self.__dict__[n] == other.__dict__[n] for n in names) and self.model_extra == other.model_extra


    @classmethod
    def model_json_schema(cls) -> dict:
        """The record's JSON Schema, as a body must be written (aliases, defaults, bounds,
        descriptions), in OpenAPI 3.0's dialect (``nullable``, boolean ``exclusiveMinimum``): the
        REST API's document is its reader (api/openapi.py)."""
        if not cls.__typed_resolved__:
            cls._resolve()
        properties: dict[str, dict] = {}
        required: list[str] = []
        for name, f in cls.model_fields.items():
            key = f.alias if f.alias is not None else name
            s = _schema_of(f.annotation)
            if f.description:
                s["description"] = f.description
            for bound, word, exclusive in (("ge", "minimum", False), ("gt", "minimum", True),
                                           ("le", "maximum", False), ("lt", "maximum", True)):
                limit = getattr(f, bound)
                if limit is not None:
                    s[word] = limit
                    if exclusive:
                        s["exclusive" + word.capitalize()] = True
            if f.is_required():
                required.append(key)
            elif f.default_factory is None and f.default is not None and not isinstance(f.default, (Model, SecretStr)):
                s["default"] = _dump(f.default, ("json", True, False, False))
            properties[key] = s
        out: dict[str, Any] = {"type": "object", "properties": properties}
        if required:
            out["required"] = required
        if cls.model_config.get("extra") == "forbid":
            out["additionalProperties"] = False
        if cls.__doc__:
            out["description"] = " ".join(cls.__doc__.split())
        return out

    __hash__ = None  # type: ignore[assignment]  (mutable, as pydantic's)

    def __repr__(self) -> str:
        parts = [f"{n}={self.__dict__[n]!r}" for n in type(self).model_fields]
        return f"{type(self).__name__}({', '.join(parts)})"


def _error(loc: tuple, type_: str, msg: str) -> dict:
    return {"loc": loc, "type": type_, "msg": msg}


def _dump(value: Any, opts: tuple) -> Any:
    if isinstance(value, Model):
        mode, by_alias, exclude_none, exclude_unset = opts
        return value.model_dump(mode=mode, by_alias=by_alias, exclude_none=exclude_none, exclude_unset=exclude_unset)
    if isinstance(value, dict):
        return {k: _dump(v, opts) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        out = [_dump(v, opts) for v in value]
        return out if isinstance(value, list) or opts[0] == "json" else tuple(out)
    if isinstance(value, SecretStr) and opts[0] == "json":
        return str(value)
    return value


_JSON_TYPES = {str: "string", int: "integer", float: "number", bool: "boolean"}


def _schema_of(ann: Any) -> dict:
    """JSON Schema (OpenAPI 3.0's dialect) of a field type; the types ``_as`` converts."""
    origin = get_origin(ann)
    if origin in (Union, types.UnionType):
        members = [m for m in get_args(ann) if m is not type(None)]
        out = _schema_of(members[0]) if len(members) == 1 else {"anyOf": [_schema_of(m) for m in members]}
        if len(members) < len(get_args(ann)):
            out["nullable"] = True
        return out
    if origin is Literal:
        choices = list(get_args(ann))
        kinds = {_JSON_TYPES.get(type(c)) for c in choices}
        return {"type": kinds.pop(), "enum": choices} if len(kinds) == 1 and None not in kinds else {"enum": choices}
    if origin is list or ann is list:
        args = get_args(ann)
        return {"type": "array", "items": _schema_of(args[0]) if args else {}}
    if origin is dict or ann is dict:
        args = get_args(ann)
        return {"type": "object", "additionalProperties": _schema_of(args[1]) if args else {}}
    if isinstance(ann, type) and issubclass(ann, Model):
        return ann.model_json_schema()
    if ann is SecretStr:
        return {"type": "string", "format": "password"}
    if ann in _JSON_TYPES:
        return {"type": _JSON_TYPES[ann]}
    return {}  # Any


def validate_as(annotation: Any, value: Any) -> Any:
    """``value`` converted to ``annotation`` as a field of that type would be, else ValidationError."""
    errors: list[dict] = []
    out = _convert(annotation, value, (), errors, None, {})
    if errors:
        raise ValidationError(getattr(annotation, "__name__", str(annotation)), errors)
    return out


def _convert(ann: Any, value: Any, loc: tuple, errors: list[dict], f: FieldInfo | None, config: dict) -> Any:
    """``value`` as ``ann`` (bounds of ``f`` checked), or _MISSING with the fault added to ``errors``."""
    try:
        out = _as(ann, value, loc, errors, config, f)
    except _Fault as e:
        errors.append(_error(loc, e.type, e.msg))
        return _MISSING
    if out is _MISSING or f is None or not isinstance(out, (int, float)) or isinstance(out, bool):
        return out
    for bound, op, word, kind in (("ge", float.__ge__, "greater than or equal to", "greater_than_equal"),
                                  ("gt", float.__gt__, "greater than", "greater_than"),
                                  ("le", float.__le__, "less than or equal to", "less_than_equal"),
                                  ("lt", float.__lt__, "less than", "less_than")):
        limit = getattr(f, bound)
        if limit is not None and not op(float(out), float(limit)):
            errors.append(_error(loc, kind, f"Input should be {word} {limit}"))
            return _MISSING
    return out


def _type_name(ann: Any) -> str:
    """A type as pydantic names a union member in an error's location: ``list[str]``, ``str``."""
    if get_origin(ann) is None:
        return getattr(ann, "__name__", repr(ann))
    return repr(ann).replace("typing.", "")


def _as(ann: Any, value: Any, loc: tuple, errors: list[dict], config: dict, f: FieldInfo | None) -> Any:
    if ann is Any:
        return value
    origin = get_origin(ann)
    if origin in (Union, types.UnionType):
        members = get_args(ann)
        if value is None and type(None) in members:
            return None
        tried = [m for m in members if m is not type(None)]
        faults: list[dict] = []
        for member in tried:
            trial: list[dict] = []
            out = _convert(member, value, loc, trial, f, config)
            if not trial:
                return out
            where = loc + (_type_name(member),) if len(tried) > 1 else loc  # as pydantic names them
            faults += [{**e, "loc": where + e["loc"][len(loc):]} for e in trial]
        errors.extend(faults)
        return _MISSING
    if origin is Literal:
        choices = get_args(ann)
        if value in choices and not (isinstance(value, bool) and not any(c is value for c in choices)):
            return value
        names = [repr(c) for c in choices]
        text = names[0] if len(names) == 1 else ", ".join(names[:-1]) + " or " + names[-1]
        raise _Fault("literal_error", f"Input should be {text}")
    if origin is list or ann is list:
        if not isinstance(value, (list, tuple)):
            raise _Fault("list_type", "Input should be a valid list")
        if ann is list:
            return list(value)
        (item,) = get_args(ann)
        out, before = [], len(errors)
        for i, v in enumerate(value):
            out.append(_convert(item, v, loc + (i,), errors, None, config))
        return out if len(errors) == before else _MISSING
    if origin is dict or ann is dict:
        if not isinstance(value, dict):
            raise _Fault("dict_type", "Input should be a valid dictionary")
        if ann is dict:
            return dict(value)
        kt, vt = get_args(ann)
        out, before = {}, len(errors)
        for k, v in value.items():
            key = _convert(kt, k, loc + (k,), errors, None, config)
            out[key] = _convert(vt, v, loc + (k,), errors, None, config)
        return out if len(errors) == before else _MISSING
    if isinstance(ann, type) and issubclass(ann, Model):
        if isinstance(value, ann):
            return value
        if not isinstance(value, dict):
            raise _Fault("model_type", f"Input should be a valid dictionary or instance of {ann.__name__}")
        built = ann._build(value, loc, errors)
        return _MISSING if built is None else built
    if ann is bool:
        if isinstance(value, bool):
            return value
        if isinstance(value, int) and value in (0, 1):
            return bool(value)
        if isinstance(value, str) and value.strip().lower() in _TRUE | _FALSE:
            return value.strip().lower() in _TRUE
        if isinstance(value, str):
            raise _Fault("bool_parsing", "Input should be a valid boolean, unable to interpret input")
        raise _Fault("bool_type", "Input should be a valid boolean")
    if ann is int:
        if isinstance(value, int):  # a bool too, as pydantic's lax mode
            return int(value)
        if isinstance(value, float):
            if value.is_integer():
                return int(value)
            raise _Fault("int_from_float", "Input should be a valid integer, got a number with a fractional part")
        if isinstance(value, str):
            try:
                return int(value.strip())
            except ValueError:
                try:
                    as_float = float(value)
                except ValueError:
                    as_float = None
                if as_float is not None and as_float.is_integer():
                    return int(as_float)
                raise _Fault("int_parsing", "Input should be a valid integer, unable to parse string as an integer")
        raise _Fault("int_type", "Input should be a valid integer")
    if ann is float:
        if isinstance(value, (int, float)):
            out = float(value)
        elif isinstance(value, str):
            try:
                out = float(value.strip())
            except ValueError:
                raise _Fault("float_parsing", "Input should be a valid number, unable to parse string as a number") \
                    from None
        else:
            raise _Fault("float_type", "Input should be a valid number")
        allow = f.allow_inf_nan if f is not None and f.allow_inf_nan is not None \
            else config.get("allow_inf_nan", True)
        if not allow and not math.isfinite(out):
            raise _Fault("finite_number", "Input should be a finite number")
        return out
    if ann is str:
        if isinstance(value, str):
            return value
        raise _Fault("string_type", "Input should be a valid string")
    if ann is SecretStr:
        if isinstance(value, SecretStr):
            return value
        if isinstance(value, str):
            return SecretStr(value)
        raise _Fault("string_type", "Input should be a valid string")
    if ann is type(None):
        if value is None:
            return None
        raise _Fault("none_required", "Input should be None")
    raise TypeError(f"no conversion to {ann!r}")
