"""What every configuration section is made of (``schema.py`` re-exports the
sections): the strict base model and the constrained number types."""
from __future__ import annotations

from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field


class Strict(BaseModel):
    # not strict: PyYAML reads `1e-3` (a --set value, or a file's) as a string, which lax mode takes as a float.
    # validate_default: a key the given mapping lacks (a run made before the key existed) takes the
    # schema's default, checked like a given value.
    model_config = ConfigDict(extra="forbid", strict=False, validate_assignment=True, validate_default=True)


Share = Annotated[float, Field(ge=0.0, le=1.0)]
PositiveInt = Annotated[int, Field(gt=0)]
NonNegInt = Annotated[int, Field(ge=0)]
Positive = Annotated[float, Field(gt=0)]
NonNeg = Annotated[float, Field(ge=0)]
Status = Annotated[int, Field(ge=100, le=599)]


def as_list(v):
    """A single path given as a string, as the list of that one path."""
    return [v] if isinstance(v, str) else v


def section(model: type[BaseModel], description: str | None = None):
    """A section field: its default is the model with every default of its own."""
    return Field(default_factory=model, description=description)
