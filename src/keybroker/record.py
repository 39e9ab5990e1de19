"""A small stand-in for ``dataclasses``: ``@record`` classes with generated ``__init__``.

``import dataclasses`` pulls in ``inspect``, ``ast`` and ``dis`` and each decorated class
``exec``s generated code: ~10 ms on every helper start that touches the core or a source
module, more than a whole cache hit costs. ``@record`` covers what keybroker uses — fields in
annotation order, defaults, ``field(default_factory=…, repr=False)``, ``frozen=True`` — with
plain closures, and type checkers see it as a dataclass (PEP 681 ``dataclass_transform``).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar, dataclass_transform, overload

_MISSING: Any = object()

C = TypeVar("C", bound=type)


class FrozenInstanceError(AttributeError):
    """Assigning to a field of a ``frozen=True`` record."""


class _Field:
    __slots__ = ("default", "factory", "repr")

    def __init__(
        self, default: Any = _MISSING, factory: Callable[[], Any] | None = None, repr: bool = True
    ) -> None:
        self.default = default
        self.factory = factory
        self.repr = repr

    def has_default(self) -> bool:
        return self.factory is not None or self.default is not _MISSING


def field(
    *,
    default: Any = _MISSING,
    default_factory: Callable[[], Any] | None = None,
    repr: bool = True,
) -> Any:
    """Like ``dataclasses.field``: a default, a default factory, or exclusion from repr."""
    return _Field(default, default_factory, repr)


def _fields(cls: type) -> list[tuple[str, _Field]]:
    specs: list[tuple[str, _Field]] = []
    for name in cls.__dict__.get("__annotations__", {}):  # noqa: RUF063 - no inspect import
        value = cls.__dict__.get(name, _MISSING)
        spec = value if isinstance(value, _Field) else _Field(value)
        if isinstance(value, _Field) and spec.default is not _MISSING:
            setattr(cls, name, spec.default)
        elif isinstance(value, _Field):
            delattr(cls, name)
        specs.append((name, spec))
    seen_default = False
    for name, spec in specs:
        if spec.has_default():
            seen_default = True
        elif seen_default:
            raise TypeError(f"{cls.__name__}: field '{name}' without a default follows one with")
    return specs


def _build(cls: C, frozen: bool) -> C:
    specs = _fields(cls)
    names = tuple(name for name, _ in specs)
    shown = tuple(name for name, spec in specs if spec.repr)
    setter = object.__setattr__

    def __init__(self: Any, *args: Any, **kwargs: Any) -> None:
        if len(args) > len(specs):
            raise TypeError(f"{cls.__name__}() takes {len(specs)} arguments, got {len(args)}")
        for index, (name, spec) in enumerate(specs):
            if index < len(args):
                if name in kwargs:
                    raise TypeError(f"{cls.__name__}() got '{name}' twice")
                value = args[index]
            elif name in kwargs:
                value = kwargs.pop(name)
            elif spec.factory is not None:
                value = spec.factory()
            elif spec.default is not _MISSING:
                value = spec.default
            else:
                raise TypeError(f"{cls.__name__}() missing argument '{name}'")
            setter(self, name, value)
        if kwargs:
            raise TypeError(f"{cls.__name__}() got unexpected arguments {sorted(kwargs)}")

    def __repr__(self: Any) -> str:
        inner = ", ".join(f"{name}={getattr(self, name)!r}" for name in shown)
        return f"{cls.__name__}({inner})"

    def __eq__(self: Any, other: object) -> bool:
        if other.__class__ is not self.__class__:
            return NotImplemented
        return all(getattr(self, n) == getattr(other, n) for n in names)

    cls.__init__ = __init__  # type: ignore[misc]
    cls.__repr__ = __repr__  # type: ignore[assignment, method-assign]
    cls.__eq__ = __eq__  # type: ignore[assignment, method-assign]
    if frozen:

        def __setattr__(self: Any, name: str, value: Any) -> None:
            raise FrozenInstanceError(f"cannot assign to field '{name}' of a frozen record")

        def __hash__(self: Any) -> int:
            return hash(tuple(getattr(self, n) for n in names))

        cls.__setattr__ = __setattr__  # type: ignore[assignment, method-assign]
        cls.__delattr__ = __setattr__  # type: ignore[assignment, method-assign]
        cls.__hash__ = __hash__  # type: ignore[assignment, method-assign]
    else:
        cls.__hash__ = None  # type: ignore[assignment]  # mutable and comparable: unhashable
    return cls


@overload
def record(cls: C, /) -> C: ...


@overload
def record(*, frozen: bool = False) -> Callable[[C], C]: ...


@dataclass_transform(field_specifiers=(field,))
def record(cls: Any = None, /, *, frozen: bool = False) -> Any:
    """``@record`` or ``@record(frozen=True)``: a dataclass without the dataclasses module."""
    if cls is None:
        return lambda inner: _build(inner, frozen)
    return _build(cls, frozen)
