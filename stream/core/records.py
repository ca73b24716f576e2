"""One generic converter between the core's dataclasses and plain records (JSON- and Avro-ready).

A record's shape has one home, the dataclass: its field names are the record's keys, its types say
how to convert each value (nested dataclasses, tuples, lists, dicts, optionals, literals), and its
defaults fill what a record leaves out. Nothing is mirrored by hand per class, so adding a field is
one line.

The worker converts a customer's whole state on every event, so the converter of a class is
generated once from its fields (as `dataclasses` generates `__init__`) and cached: a call runs one
straight-line function, as fast as the hand-written methods it replaces.

Field metadata tunes a field: `NOT_IN_RECORD` leaves it out of records (it is rebuilt from its
default), and `fallback(value)` reads a value a `Literal` field does not allow as `value` (a
fail-safe reading of an unknown action) instead of refusing the record.
"""

from __future__ import annotations

import dataclasses
import itertools
import types
import typing
from collections.abc import Callable, Mapping, Sequence
from typing import Any, Final, Literal, TypeVar, Union

from stream.errors import BadInputError

T = TypeVar("T")

NOT_IN_RECORD: Final[Mapping[str, Any]] = types.MappingProxyType({"record": False})


def fallback(value: object) -> Mapping[str, Any]:
    """Metadata for a `Literal` field: read a value outside the literal as `value`."""
    return types.MappingProxyType({"fallback": value})


class RecordError(BadInputError):
    """A record that cannot become the dataclass it is read as; names the class and the field."""


class Record:
    """Mixin giving a dataclass `to_record()` and `from_record()` through the generic converter."""

    __slots__ = ()

    def to_record(self) -> dict[str, Any]:
        return to_record(self)

    @classmethod
    def from_record(cls: type[T], record: Mapping[str, Any]) -> T:
        return from_record(cls, record)


def to_record(obj: Any) -> dict[str, Any]:
    """The record of a dataclass instance: a dict of plain values (lists for tuples)."""
    record: dict[str, Any] = _converters(type(obj)).encode(obj)
    return record


def from_record(cls: type[T], record: Mapping[str, Any]) -> T:
    """A `cls` built from `record`; missing keys take the field's default, unknown keys are ignored
    (a newer writer), and a missing or malformed field is a `RecordError` naming it."""
    obj: T = _converters(cls).decode(record)
    return obj


# --- generated converters -----------------------------------------------------------------------


@dataclasses.dataclass(frozen=True, slots=True)
class _Converters:
    encode: Callable[[Any], dict[str, Any]]
    decode: Callable[[Mapping[str, Any]], Any]


_CACHE: dict[type, _Converters] = {}


def _converters(cls: type) -> _Converters:
    found = _CACHE.get(cls)
    if found is None:
        found = _CACHE[cls] = _Generator(cls).build()
    return found


def _is_union(hint: Any) -> bool:
    return typing.get_origin(hint) in (Union, types.UnionType)


def _is_plain(hint: Any) -> bool:
    """A value that is its own record: no conversion either way. Numbers are not coerced: JSON and
    Avro give them back as they were written."""
    if hint in (str, int, float, bool, type(None), Any, object):
        return True
    if typing.get_origin(hint) is Literal:
        return True
    if _is_union(hint):
        return all(_is_plain(arg) for arg in typing.get_args(hint))
    return False


def _optional_of(hint: Any) -> Any | None:
    """X for `X | None`, else None."""
    if not _is_union(hint):
        return None
    args = typing.get_args(hint)
    inner = [arg for arg in args if arg is not type(None)]
    return inner[0] if len(inner) == 1 and len(args) == 2 else None


def _item_hints(hint: Any) -> tuple[Any, ...] | None:
    """The item types of a homogeneous sequence (`tuple[X, ...]`, `list[X]`, `Sequence[X]`)."""
    origin = typing.get_origin(hint)
    args = typing.get_args(hint)
    if origin is tuple and len(args) == 2 and args[1] is Ellipsis:
        return (args[0],)
    if origin in (list, Sequence) and args:
        return (args[0],)
    return None


class _Generator:
    """Writes the source of one class's encode and decode functions and compiles them."""

    def __init__(self, cls: type) -> None:
        if not dataclasses.is_dataclass(cls):
            raise TypeError(f"{cls.__name__} is not a dataclass")
        self.cls = cls
        self.namespace: dict[str, Any] = {"RecordError": RecordError, "_cls": cls}
        self._names = itertools.count()

    def _name(self, prefix: str) -> str:
        return f"_{prefix}{next(self._names)}"

    def _bind(self, value: Any, prefix: str) -> str:
        name = self._name(prefix)
        self.namespace[name] = value
        return name

    def build(self) -> _Converters:
        hints = typing.get_type_hints(self.cls)
        encode_items: list[str] = []
        decode_lines: list[str] = []
        late_lines: list[str] = []
        fast_args: list[str] = []
        fast_late: list[tuple[str, str]] = []
        for f in dataclasses.fields(self.cls):
            if f.metadata.get("record", True) is False:
                continue
            hint = hints[f.name]
            key = repr(f.name)
            encode_items.append(f"{key}: {self._encode(hint, 'obj.' + f.name)}")
            value = self._decode(hint, f"r[{key}]", f.metadata)
            if f.init:
                fast_args.append(f"{f.name}={self._fast_value(f, hint, key)}")
            else:
                fast_late.append((key, value))
            if not f.init:
                late_lines.append(
                    f"    if {key} in r:\n        field = {key}\n"
                    f"        _setattr(obj, {key}, {value})"
                )
                continue
            required = f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING
            missing = (
                "        field = None\n"
                f"        raise RecordError(_cls.__name__ + '.{f.name}: required field is missing')"
                if required
                else "        pass"
            )
            decode_lines.append(
                f"    if {key} in r:\n        field = {key}\n        kw[{key}] = {value}\n"
                f"    else:\n{missing}"
            )
        self.namespace["_setattr"] = object.__setattr__
        self.namespace["_MISSING"] = dataclasses.MISSING
        # The fast path builds the object in one call; only a record it cannot read goes through
        # the careful path, which finds the field to name.
        fast = "def decode(r):\n    try:\n        obj = _cls(" + ", ".join(fast_args) + ")\n"
        fast += "".join(
            f"        if {key} in r:\n            _setattr(obj, {key}, {value})\n"
            for key, value in fast_late
        )
        fast += "        return obj\n    except Exception:\n        return careful(r)\n"
        source = (
            "def encode(obj):\n"
            f"    return {{{', '.join(encode_items)}}}\n" + fast + "def careful(r):\n"
            "    kw = {}\n"
            "    field = None\n"
            "    try:\n"
            + "\n".join(_indent(line) for line in decode_lines + ["    obj = _cls(**kw)"])
            + "\n"
            + "\n".join(_indent(line) for line in late_lines)
            + "\n    except RecordError as exc:\n"
            "        if field is None:\n"
            "            raise\n"
            "        raise RecordError(f'{_cls.__name__}.{field}: {exc}') from None\n"
            "    except (TypeError, ValueError, AttributeError, KeyError) as exc:\n"
            "        where = _cls.__name__ + ('.' + field if field else '')\n"
            "        raise RecordError(f'{where}: {exc}') from None\n"
            "    return obj\n"
        )
        exec(compile(source, f"<records of {self.cls.__qualname__}>", "exec"), self.namespace)  # noqa: S102 - generated from the class's own fields
        return _Converters(self.namespace["encode"], self.namespace["decode"])

    def _fast_value(self, f: dataclasses.Field[Any], hint: Any, key: str) -> str:
        """The expression reading field `f` in the fast path, its default filled in if absent."""
        if f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING:
            return self._decode(hint, f"r[{key}]", f.metadata)
        if f.default is not dataclasses.MISSING and _plain_value(f.default):
            default = self._bind(f.default, "default")
            return self._decode(hint, f"r.get({key}, {default})", f.metadata)
        make = (
            self._bind(lambda: f.default, "default")
            if f.default is not dataclasses.MISSING
            else self._bind(f.default_factory, "factory")
        )
        var = self._name("v")
        converted = self._decode(hint, var, f.metadata)
        return f"({converted} if ({var} := r.get({key}, _MISSING)) is not _MISSING else {make}())"

    def _encode(self, hint: Any, src: str) -> str:
        if _is_plain(hint):
            return src
        if dataclasses.is_dataclass(hint):
            encode = to_record if hint is self.cls else _converters(typing.cast(type, hint)).encode
            return f"{self._bind(encode, 'enc')}({src})"
        inner = _optional_of(hint)
        if inner is not None:
            return self._optional(inner, src, self._encode)
        items = _item_hints(hint)
        if items is not None:
            if _is_plain(items[0]):
                return f"list({src})"
            var = self._name("x")
            return f"[{self._encode(items[0], var)} for {var} in {src}]"
        origin = typing.get_origin(hint)
        args = typing.get_args(hint)
        if origin is tuple:
            if all(_is_plain(arg) for arg in args):
                return f"list({src})"
            var = self._name("t")
            parts = ", ".join(self._encode(arg, f"{var}[{i}]") for i, arg in enumerate(args))
            return f"(lambda {var}: [{parts}])({src})"
        if origin in (dict, Mapping):
            return self._mapping(args, src, self._encode)
        return f"{self._bind(_encode_any, 'any')}({src})"

    def _decode(self, hint: Any, src: str, metadata: Mapping[str, Any]) -> str:
        if typing.get_origin(hint) is Literal:
            allowed = frozenset(typing.get_args(hint))
            if "fallback" in metadata:
                allowed_name = self._bind(allowed, "allowed")
                default = self._bind(metadata["fallback"], "fallback")
                var = self._name("v")
                return f"({var} if ({var} := {src}) in {allowed_name} else {default})"
            return f"{self._bind(_literal_check(allowed), 'literal')}({src})"
        if _is_plain(hint):
            return src
        if dataclasses.is_dataclass(hint):
            cls = typing.cast(type, hint)
            decode = (
                (lambda value: from_record(cls, value))
                if cls is self.cls
                else _converters(cls).decode
            )
            return f"{self._bind(decode, 'dec')}({src})"
        inner = _optional_of(hint)
        if inner is not None:
            return self._optional(inner, src, lambda h, s: self._decode(h, s, metadata))
        origin = typing.get_origin(hint)
        args = typing.get_args(hint)
        items = _item_hints(hint)
        if items is not None:
            collect = "tuple" if origin is tuple else "list"
            if _is_plain(items[0]):
                return f"{collect}({src})"
            var = self._name("x")
            body = f"{self._decode(items[0], var, {})} for {var} in {src}"
            return f"tuple({body})" if collect == "tuple" else f"[{body}]"
        if origin is tuple:
            var = self._name("t")
            parts = "".join(
                self._decode(arg, f"{var}[{i}]", {}) + ", " for i, arg in enumerate(args)
            )
            return f"(lambda {var}: ({parts}))({src})"
        if origin in (dict, Mapping):
            return self._mapping(args, src, lambda h, s: self._decode(h, s, {}))
        return src

    # The two forms both directions generate alike, each with the direction's own converter.

    def _optional(self, inner: Any, src: str, convert: Callable[[Any, str], str]) -> str:
        var = self._name("v")
        return f"(None if ({var} := {src}) is None else {convert(inner, var)})"

    def _mapping(self, args: tuple[Any, ...], src: str, convert: Callable[[Any, str], str]) -> str:
        if not args or _is_plain(args[1]):
            return f"dict({src})"
        key, var = self._name("k"), self._name("x")
        return f"{{{key}: {convert(args[1], var)} for {key}, {var} in {src}.items()}}"


def _plain_value(value: Any) -> bool:
    """A default that reads as itself through any converter of its field."""
    return value is None or isinstance(value, str | int | float | bool) or value == ()


def _indent(block: str) -> str:
    return "\n".join("    " + line for line in block.split("\n"))


def _literal_check(allowed: frozenset[Any]) -> Callable[[Any], Any]:
    def check(value: Any) -> Any:
        if value not in allowed:
            raise RecordError(f"{value!r} is not one of {sorted(map(str, allowed))}")
        return value

    return check


def _encode_any(value: Any) -> Any:
    """For a field typed loosely: convert by what the value is."""
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return to_record(value)
    if isinstance(value, tuple | list):
        return [_encode_any(item) for item in value]
    if isinstance(value, Mapping):
        return {key: _encode_any(item) for key, item in value.items()}
    return value
