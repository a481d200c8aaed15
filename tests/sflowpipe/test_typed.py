"""sflowpipe/typed.py: the records the settings and definitions are made of (pydantic's lax
conversions and wording, without its ~0.2 s start-up cost)."""

from __future__ import annotations

import math
import pickle
from typing import Literal

import pytest

from sflowpipe.typed import (ConfigDict, Field, Model, SecretStr, ValidationError, field_validator, model_validator,
                             validate_as)


class Inner(Model):
    model_config = ConfigDict(extra="forbid")

    port: int = Field(6343, ge=1, le=65535)
    ratio: float = Field(0.5, gt=0, lt=1)


class Outer(Model):
    model_config = {"extra": "forbid", "populate_by_name": True}

    name: str
    inner: Inner = Inner()
    mode: Literal["udp", "tcp"] = "udp"
    on: bool = False
    tags: list[str] = Field(default_factory=list)
    groups: dict[str, list[str] | str] = Field(default_factory=dict)
    secret: SecretStr | None = None
    start: bool = Field(False, alias="flowStart")
    rate: float = 1

    @field_validator("name")
    @classmethod
    def _strip(cls, v: str) -> str:
        if not v.strip():
            raise ValueError("name is empty")
        return v.strip()

    @model_validator(mode="after")
    def _tcp_needs_on(self):
        if self.mode == "tcp" and not self.on:
            raise ValueError("tcp needs on")
        return self


def faults(fn, *args, **kwargs) -> list[tuple[str, str]]:
    with pytest.raises(ValidationError) as e:
        fn(*args, **kwargs)
    return [(".".join(map(str, err["loc"])), err["msg"]) for err in e.value.errors()]


def test_lax_conversions_as_from_environment_strings():
    o = Outer.model_validate({"name": " a ", "inner": {"port": "7000", "ratio": "0.25"}, "on": "yes",
                              "mode": "udp", "tags": ("x", "y"), "secret": "s", "flowStart": 1, "rate": "2"})
    assert (o.name, o.inner.port, o.inner.ratio, o.on, o.tags, o.start, o.rate) == \
        ("a", 7000, 0.25, True, ["x", "y"], True, 2.0)
    assert isinstance(o.secret, SecretStr) and o.secret.get_secret_value() == "s"
    assert validate_as(int, "5.0") == 5 and validate_as(int, 3.0) == 3 and validate_as(bool, "off") is False
    assert validate_as(dict[str, list[str] | str], {"a": ["b"], "c": "d"}) == {"a": ["b"], "c": "d"}
    assert Outer(name="a").rate == 1.0 and type(Outer(name="a").rate) is float  # a float field's int default


def test_every_fault_named_with_pydantics_wording():
    got = faults(Outer.model_validate, {"inner": {"port": "x", "ratio": 1}, "mode": "quic", "on": "maybe",
                                        "tags": "x", "groups": {"g": 1}, "extra": 1})
    assert got == [
        ("name", "Field required"),
        ("inner.port", "Input should be a valid integer, unable to parse string as an integer"),
        ("inner.ratio", "Input should be less than 1"),
        ("mode", "Input should be 'udp' or 'tcp'"),
        ("on", "Input should be a valid boolean, unable to interpret input"),
        ("tags", "Input should be a valid list"),
        ("groups.g.list[str]", "Input should be a valid list"),
        ("groups.g.str", "Input should be a valid string"),
        ("extra", "Extra inputs are not permitted"),
    ]
    assert faults(Inner, port=0) == [("port", "Input should be greater than or equal to 1")]
    assert faults(Inner, port=2.5) == [("port", "Input should be a valid integer, got a number with a "
                                                "fractional part")]
    assert faults(Outer, name="  ") == [("name", "Value error, name is empty")]
    assert faults(Outer, name="a", mode="tcp") == [("", "Value error, tcp needs on")]  # the record's own check
    assert faults(Outer.model_validate, [1]) == [("", "Input should be a valid dictionary or instance of Outer")]
    assert faults(Outer, name=5) == [("name", "Input should be a valid string")]  # no number to string


def test_non_finite_numbers_where_refused():
    class Finite(Model):
        model_config = {"allow_inf_nan": False}
        x: float = 1.0

    assert faults(Finite, x="inf") == [("x", "Input should be a finite number")]
    assert math.isnan(validate_as(float, "nan"))  # allowed where not refused, as pydantic's default
    assert faults(Inner, ratio=float("nan")) == [("ratio", "Input should be greater than 0")]


def test_dump_copy_and_what_was_set():
    o = Outer(name="a", inner={"port": 1}, secret="pw", flowStart=True)
    assert o.model_fields_set == {"name", "inner", "secret", "start"}
    assert o.inner.model_fields_set == {"port"}
    assert o.model_dump(exclude_unset=True) == {"name": "a", "inner": {"port": 1}, "secret": SecretStr("pw"),
                                                "start": True}
    assert o.model_dump(mode="json", by_alias=True, exclude_none=False)["secret"] == "**********"
    assert o.model_dump(by_alias=True)["flowStart"] is True and "start" not in o.model_dump(by_alias=True)
    assert "pw" not in repr(o) and "pw" not in str(o.secret)
    c = o.model_copy(update={"on": True})
    assert c.on is True and o.on is False and "on" in c.model_fields_set and "on" not in o.model_fields_set
    assert c != o and c.model_copy(update={"on": False}) == o.model_copy(update={"on": False})
    assert pickle.loads(pickle.dumps(o)) == o  # `up` and the ingest workers may pass settings to processes
    d1, d2 = Outer(name="a"), Outer(name="b")
    d1.tags.append("x")
    assert d2.tags == [] and Outer.model_fields["tags"].get_default() == []  # defaults are not shared


def test_extra_modes():
    class Allow(Model):
        model_config = {"extra": "allow"}
        type: str = "x"

    class Ignore(Model):
        type: str = "x"

    a = Allow.model_validate({"type": "y", "router": "r"})
    assert a.model_extra == {"router": "r"} and a.router == "r" and a.model_dump() == {"type": "y", "router": "r"}
    assert Ignore.model_validate({"router": "r"}).model_extra is None


def test_inherited_fields_and_validators():
    class Listener(Model):
        listen: str = Field(description="HOST:PORT")

        @field_validator("listen")
        @classmethod
        def _loopback(cls, v: str) -> str:
            return "127.0.0.1" + v if v.startswith(":") else v

    class Api(Listener):
        listen: str = Field("127.0.0.1:8008")
        extra_field: int = 1

    assert faults(Listener) == [("listen", "Field required")]
    assert Api().listen == "127.0.0.1:8008" and Api(listen=":9").listen == "127.0.0.1:9"
    assert list(Api.model_fields) == ["listen", "extra_field"]
    assert Api.model_fields["listen"].annotation is str


def test_json_schema_of_a_record_as_a_body_is_written():
    """OpenAPI 3.0's dialect (the API's document reads it): aliases, defaults, bounds, nullable."""
    s = Outer.model_json_schema()
    assert s["type"] == "object" and s["additionalProperties"] is False and s["required"] == ["name"]
    p = s["properties"]
    assert list(p) == ["name", "inner", "mode", "on", "tags", "groups", "secret", "flowStart", "rate"]
    assert p["name"] == {"type": "string"}
    assert p["inner"]["properties"]["port"] == {"type": "integer", "minimum": 1, "maximum": 65535, "default": 6343}
    assert p["inner"]["properties"]["ratio"] == {"type": "number", "minimum": 0, "exclusiveMinimum": True,
                                                 "maximum": 1, "exclusiveMaximum": True, "default": 0.5}
    assert "default" not in p["inner"]  # a record default: its fields' defaults say it
    assert p["mode"] == {"type": "string", "enum": ["udp", "tcp"], "default": "udp"}
    assert p["on"] == {"type": "boolean", "default": False}
    assert p["tags"] == {"type": "array", "items": {"type": "string"}}
    assert p["groups"] == {"type": "object", "additionalProperties": {
        "anyOf": [{"type": "array", "items": {"type": "string"}}, {"type": "string"}]}}
    assert p["secret"] == {"type": "string", "format": "password", "nullable": True}
    assert p["flowStart"] == {"type": "boolean", "default": False}
    assert p["rate"] == {"type": "number", "default": 1.0}
