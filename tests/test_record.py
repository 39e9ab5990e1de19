"""keybroker.record behaves like the dataclasses it replaces, for what keybroker uses."""

from __future__ import annotations

import pytest

from keybroker.record import FrozenInstanceError, field, record


@record(frozen=True)
class Frozen:
    name: str
    secret: str = field(repr=False, default="")
    tags: tuple[str, ...] = field(default_factory=tuple)
    count: int = 1


@record
class Mutable:
    id: str
    value: str = field(repr=False)
    fetched_at: float
    note: str = "n"


def test_init_defaults_and_factories():
    a = Frozen("x")
    assert (a.name, a.secret, a.tags, a.count) == ("x", "", (), 1)
    b = Frozen("y", "s", ("t",), count=3)
    assert (b.name, b.secret, b.tags, b.count) == ("y", "s", ("t",), 3)
    assert Mutable("i", "v", 1.0).note == "n"


def test_repr_hides_excluded_fields():
    text = repr(Frozen("x", "hunter2"))
    assert "hunter2" not in text
    assert text == "Frozen(name='x', tags=(), count=1)"
    assert "sekrit" not in repr(Mutable("i", "sekrit", 1.0))


def test_equality_and_hash():
    assert Frozen("x") == Frozen("x")
    assert Frozen("x") != Frozen("y")
    assert Frozen("x", tags=("a",)) != Frozen("x")
    assert hash(Frozen("x", count=2)) == hash(Frozen("x", count=2))
    with pytest.raises(TypeError):
        hash(Mutable("i", "v", 1.0))


def test_frozen_and_mutable():
    frozen = Frozen("x")
    with pytest.raises(FrozenInstanceError):
        frozen.name = "y"  # type: ignore[misc]
    mutable = Mutable("i", "v", 1.0)
    mutable.fetched_at = 2.0
    assert mutable.fetched_at == 2.0


def test_argument_errors():
    with pytest.raises(TypeError, match="missing argument 'fetched_at'"):
        Mutable("i", "v")  # type: ignore[call-arg]
    with pytest.raises(TypeError, match="unexpected"):
        Frozen("x", bogus=1)  # type: ignore[call-arg]
    with pytest.raises(TypeError, match="twice"):
        Frozen("x", name="y")  # type: ignore[misc]
    with pytest.raises(TypeError, match="takes"):
        Frozen("a", "b", (), 1, 5)  # type: ignore[call-arg]


def test_non_default_after_default_is_refused():
    with pytest.raises(TypeError, match="follows"):

        @record
        class Bad:
            a: int = 1
            b: int
