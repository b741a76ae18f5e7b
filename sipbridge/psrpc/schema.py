"""Protobuf message classes declared in Python, built at import time with the descriptor APIs.

There is no protoc on CI, and the `rpc` and psrpc `internal` schemas are not shipped by livekit-protocol, so our
messages are declared as annotated classes that read like a `.proto` file::

    @message("rpc")
    class SIPCall(Message):
        lk_call_id: Annotated[str, F(1)]
        via: Annotated[RepeatedCompositeFieldContainer[SIPUri], F(6)]
        features: Annotated[ScalarMap[str, str], F(9)]

The decorator turns the annotations into a `FileDescriptorProto` (one file per message, in the default descriptor
pool so that `livekit.*` and well-known types resolve as field types) and returns the generated class, which is a
real protobuf message: it serialises, parses and works with `json_format` like a protoc-generated one. Type
checkers see the declared class, so field access is checked without separate stubs.

The annotation decides the protobuf type: `str`, `bytes`, `bool`; a message class; `RepeatedScalarFieldContainer`
or `RepeatedCompositeFieldContainer` of those for repeated fields; `ScalarMap[str, str]` for string maps. Python
`int` and `float` are ambiguous, so `F(kind=...)` names the wire type (`int64`, `uint32`, `float`, ...) or
`F(enum=...)` the enum type (a livekit-protocol enum wrapper or an `IntEnum` declared here with `@enum`).
`F(optional=True)` is proto3 `optional` (explicit presence).

A field named after a Python keyword (``from``) is declared with a trailing underscore and `F(name="from")`;
the class gets a read-only ``from_`` alias. Set such a scalar with ``setattr(msg, "from", value)`` or the
constructor's ``**{"from": value}``; a message field is changed in place (``msg.from_.user = ...``).
"""

from __future__ import annotations

import enum as _enum
import operator
import typing
from collections.abc import Callable
from dataclasses import dataclass
from typing import Annotated, TypeVar

from google.protobuf import descriptor_pb2, descriptor_pool, message_factory
from google.protobuf.descriptor import EnumDescriptor
from google.protobuf.internal.containers import (
    RepeatedCompositeFieldContainer,
    RepeatedScalarFieldContainer,
    ScalarMap,
)
from google.protobuf.message import Message

M = TypeVar("M", bound=Message)
E = TypeVar("E", bound="ProtoEnum")

_FDP = descriptor_pb2.FieldDescriptorProto
_SCALARS: dict[object, _FDP.Type.ValueType] = {str: _FDP.TYPE_STRING, bytes: _FDP.TYPE_BYTES, bool: _FDP.TYPE_BOOL}
_KINDS = {
    "int32": _FDP.TYPE_INT32,
    "int64": _FDP.TYPE_INT64,
    "uint32": _FDP.TYPE_UINT32,
    "float": _FDP.TYPE_FLOAT,
}


class _File(typing.Protocol):
    @property
    def name(self) -> str: ...


class _Named(typing.Protocol):
    """A message or enum descriptor (pure-Python or upb), as far as a field referring to it needs."""

    @property
    def full_name(self) -> str: ...

    @property
    def file(self) -> _File: ...


class EnumType(typing.Protocol):
    """What a field needs from an enum type: its descriptor (livekit-protocol enums and our `ProtoEnum`s)."""

    @property
    def DESCRIPTOR(self) -> EnumDescriptor: ...


class ProtoEnum(_enum.IntEnum):
    """Base of enums declared here; `@enum` registers the members as a proto enum and sets `DESCRIPTOR`."""

    DESCRIPTOR: typing.ClassVar[EnumDescriptor]


@dataclass(frozen=True)
class F:
    """A field's number, plus what the Python annotation cannot say (wire kind of a number, enum, presence)."""

    number: int
    kind: str | None = None
    enum: EnumType | None = None
    optional: bool = False
    name: str | None = None  # the proto name, when the Python one differs (a keyword)


def message(package: str) -> Callable[[type[M]], type[M]]:
    """Class decorator: build the declared message in proto package `package`; returns the generated class."""

    def build(cls: type[M]) -> type[M]:
        full_name = f"{package}.{cls.__name__}"
        file = _file(package, cls.__name__)
        proto = file.message_type.add(name=cls.__name__)
        deps: set[str] = set()
        hints = typing.get_type_hints(cls, include_extras=True)
        aliases: dict[str, str] = {}
        for attribute in cls.__annotations__:
            hint = hints[attribute]
            if typing.get_origin(hint) is not Annotated:
                raise TypeError(f"{full_name}.{attribute}: annotate as Annotated[<type>, F(<number>)]")
            python_type, spec = typing.get_args(hint)
            name = spec.name or attribute
            if name != attribute:
                aliases[attribute] = name
            _add_field(proto, full_name, name, python_type, spec, deps)
        file.dependency.extend(sorted(deps))
        pool = descriptor_pool.Default()
        pool.Add(file)
        generated = message_factory.GetMessageClass(pool.FindMessageTypeByName(full_name))
        generated.__module__ = cls.__module__  # so reprs and tracebacks name where it is declared
        for attribute, name in aliases.items():
            setattr(generated, attribute, property(operator.attrgetter(name), doc=f"The field {name!r}."))
        return typing.cast(type[M], generated)

    return build


def enum(package: str) -> Callable[[type[E]], type[E]]:
    """Class decorator: register a `ProtoEnum` as proto enum `package.<Name>`; the class stays as it is."""

    def build(cls: type[E]) -> type[E]:
        full_name = f"{package}.{cls.__name__}"
        file = _file(package, cls.__name__)
        proto = file.enum_type.add(name=cls.__name__)
        for member in cls:
            proto.value.add(name=member.name, number=member.value)
        pool = descriptor_pool.Default()
        pool.Add(file)
        cls.DESCRIPTOR = pool.FindEnumTypeByName(full_name)
        return cls

    return build


def _file(package: str, name: str) -> descriptor_pb2.FileDescriptorProto:
    """One file per declared type, named after it (file names only need to be unique in the pool)."""
    return descriptor_pb2.FileDescriptorProto(
        name=f"sipbridge/{package}/{name}.proto", package=package, syntax="proto3"
    )


def _add_field(
    proto: descriptor_pb2.DescriptorProto, owner: str, name: str, python_type: object, spec: F, deps: set[str]
) -> None:
    field = proto.field.add(name=name, number=spec.number, label=_FDP.LABEL_OPTIONAL)
    origin = typing.get_origin(python_type)
    if origin in (RepeatedScalarFieldContainer, RepeatedCompositeFieldContainer):
        field.label = _FDP.LABEL_REPEATED
        (python_type,) = typing.get_args(python_type)
    elif origin is ScalarMap:
        if typing.get_args(python_type) != (str, str):
            raise TypeError(f"{owner}.{name}: only ScalarMap[str, str] maps are supported")
        _add_string_map(proto, owner, field)
        return
    _set_type(field, owner, python_type, spec, deps)
    if spec.optional:
        field.proto3_optional = True
        field.oneof_index = len(proto.oneof_decl)
        proto.oneof_decl.add(name=f"_{name}")


def _set_type(
    field: descriptor_pb2.FieldDescriptorProto, owner: str, python_type: object, spec: F, deps: set[str]
) -> None:
    where = f"{owner}.{field.name}"
    named: _Named | None = None
    if spec.enum is not None:
        field.type, named = _FDP.TYPE_ENUM, spec.enum.DESCRIPTOR
    elif spec.kind is not None:
        if python_type not in (int, float) or spec.kind not in _KINDS:
            raise TypeError(f"{where}: kind={spec.kind!r} does not fit {python_type!r}")
        field.type = _KINDS[spec.kind]
    elif python_type in _SCALARS:
        field.type = _SCALARS[python_type]
    elif isinstance(python_type, type) and issubclass(python_type, Message):
        field.type, named = _FDP.TYPE_MESSAGE, python_type.DESCRIPTOR
    else:
        raise TypeError(f"{where}: cannot map {python_type!r} to a protobuf type (numbers need F(kind=...))")
    if named is not None:
        field.type_name = "." + named.full_name
        deps.add(named.file.name)


def _add_string_map(
    proto: descriptor_pb2.DescriptorProto, owner: str, field: descriptor_pb2.FieldDescriptorProto
) -> None:
    """A map field is a repeated nested `<Name>Entry {key = 1; value = 2}` message marked as a map entry."""
    entry_name = "".join(part.capitalize() for part in field.name.split("_")) + "Entry"
    entry = proto.nested_type.add(name=entry_name)
    entry.options.map_entry = True
    entry.field.add(name="key", number=1, label=_FDP.LABEL_OPTIONAL, type=_FDP.TYPE_STRING)
    entry.field.add(name="value", number=2, label=_FDP.LABEL_OPTIONAL, type=_FDP.TYPE_STRING)
    field.label = _FDP.LABEL_REPEATED
    field.type = _FDP.TYPE_MESSAGE
    field.type_name = f".{owner}.{entry_name}"
