"""`pbt.errors`: the one status table of both transports and the one pydantic-error formatter."""

from __future__ import annotations

import pytest
from pydantic import BaseModel, Field, model_validator
from pydantic import ValidationError as PydanticValidationError

from pbt.errors import (
    INTERNAL,
    STATUS,
    ConflictError,
    NotFoundError,
    PbtError,
    Status,
    UnavailableError,
    ValidationError,
    field_path,
    from_pydantic,
    status_of,
)


def test_the_table_pins_each_kind_on_both_transports():
    assert STATUS == {
        ValidationError: Status("INVALID_ARGUMENT", 400),
        NotFoundError: Status("NOT_FOUND", 404),
        ConflictError: Status("FAILED_PRECONDITION", 409),
        UnavailableError: Status("UNAVAILABLE", 503),
        PbtError: Status("FAILED_PRECONDITION", 409),
    }
    assert INTERNAL == Status("INTERNAL", 500)


class _Later(PbtError):
    """A kind added without a row: it answers as a plain PbtError."""


class _LaterValidation(ValidationError):
    pass


@pytest.mark.parametrize(
    ("exc", "status"),
    [
        (ValidationError("x", field="f"), STATUS[ValidationError]),
        (_LaterValidation("x"), STATUS[ValidationError]),
        (NotFoundError("x"), STATUS[NotFoundError]),
        (ConflictError("x"), STATUS[ConflictError]),
        (UnavailableError("x", endpoint="http://a"), STATUS[UnavailableError]),
        (_Later("x"), STATUS[PbtError]),
        (ValueError("x"), INTERNAL),
        (KeyError("x"), INTERNAL),
    ],
)
def test_status_of_finds_the_nearest_kind(exc, status):
    assert status_of(exc) is status


def test_the_grpc_names_are_status_codes():
    import grpc

    for status in [*STATUS.values(), INTERNAL]:
        assert grpc.StatusCode[status.grpc]


class Inner(BaseModel):
    endpoint: str
    retries: int = Field(1, ge=1)


class Outer(BaseModel):
    models: list[Inner]
    name: str = "x"

    @model_validator(mode="after")
    def _named(self) -> Outer:
        if self.name == "bad":
            raise ValueError("models[0].endpoint: clashes with the name")
        return self


def _error(data) -> PydanticValidationError:
    with pytest.raises(PydanticValidationError) as info:
        Outer.model_validate(data)
    return info.value


def test_field_path_uses_dots_and_list_indices():
    assert field_path(("models", 0, "endpoint")) == "models[0].endpoint"
    assert field_path(("a", "function-after", "b", 2, 3)) == "a.b[2][3]"
    assert field_path(()) == ""


def test_from_pydantic_names_the_first_field_and_counts_the_rest():
    err = from_pydantic(_error({"models": [{"endpoint": "e", "retries": 0}, {}]}), prefix="config.")
    assert isinstance(err, ValidationError)
    assert err.field == "config.models[0].retries"
    assert err.message == "Input should be greater than or equal to 1 (and 1 more)"
    assert str(err) == f"field 'config.models[0].retries': {err.message}"


def test_from_pydantic_missing_fields_named_fields_and_location():
    missing = from_pydantic(_error({"models": [{}]}), location="run.yaml")
    assert (missing.field, missing.message, missing.location) == (
        "models[0].endpoint",
        "missing field",
        "run.yaml",
    )
    named = from_pydantic(_error({"models": [{"endpoint": "e"}], "name": "bad"}), line_of=lambda loc: 7)
    assert (named.field, named.message, named.location) == (
        "models[0].endpoint",
        "clashes with the name",
        None,
    )
    lined = from_pydantic(_error({"models": [{}]}), location="run.yaml", line_of=lambda loc: len(loc))
    assert lined.location == "run.yaml:3"  # ("models", 0, "endpoint")


def test_from_pydantic_echoes_the_bad_value_only_when_asked():
    exc = _error({"models": [{"endpoint": "e", "retries": -5}]})
    assert "(got" not in from_pydantic(exc).message
    assert from_pydantic(exc, echo_input=True).message.endswith("(got -5)")


def test_from_pydantic_with_only_a_prefix_names_the_prefix():
    class Model(BaseModel):
        value: int

        @model_validator(mode="before")
        @classmethod
        def _whole(cls, data):
            raise ValueError("nothing fits")

    with pytest.raises(PydanticValidationError) as info:
        Model.model_validate({"value": 1})
    err = from_pydantic(info.value, prefix="sampling.")
    assert (err.field, err.message) == ("sampling", "nothing fits")


@pytest.mark.parametrize(
    ("status", "kind"),
    [
        (400, ValidationError),
        (422, ValidationError),
        (404, NotFoundError),
        (409, ConflictError),
        (500, UnavailableError),
    ],
)
def test_a_client_maps_http_statuses_back_through_the_table(status, kind):
    from pbt.errors import kind_for_http

    assert kind_for_http(status) is kind
