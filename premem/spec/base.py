"""The base of every spec section (`Strict`) and the pieces that sections of every layer share (`RunSelector`,
`PositiveFloat`).

premem.spec.schema builds the whole spec from these; a classic measure (premem.measures) declares its own section with
them. This module imports nothing of premem but premem.safetext, so anything may build on it.
"""
from __future__ import annotations

from typing import Annotated, Any, ClassVar

from pydantic import BaseModel, ConfigDict, Field, ValidationInfo, field_validator, model_serializer

from premem.safetext import control_characters

__all__ = ["PositiveFloat", "RunSelector", "Strict"]


class Strict(BaseModel):
    """Base for every spec section: unknown keys are errors, not silently ignored; no number is NaN or
    infinite (every float field, however nested: a NaN passes every bound and crashes `report` later); no
    string holds a control character (names, paths and ids are printed in messages and used in file names),
    except tabs and newlines in the free-text fields a section lists in `text_fields`."""

    model_config = ConfigDict(extra="forbid", frozen=True, allow_inf_nan=False)
    text_fields: ClassVar[frozenset[str]] = frozenset()
    #: fields added after studies were stored, each with the (dumped) value at which premem computes what it
    #: computed before the field existed: a dump leaves the field out at that value, so the content hashes (job
    #: ids) that the section enters stay as they were (tests/test_job_ids.py)
    hash_neutral: ClassVar[dict[str, Any]] = {}

    @model_serializer(mode="wrap")
    def _dump(self, handler):
        d = handler(self)
        for k, v in self.hash_neutral.items():
            if k in d and d[k] == v:
                d.pop(k)
        return d

    @field_validator("*", mode="before")
    @classmethod
    def _no_control_characters(cls, v: Any, info: ValidationInfo) -> Any:
        text = info.field_name in cls.text_fields
        for s in (v,) if isinstance(v, str) else v if isinstance(v, (list, tuple)) else ():
            bad = control_characters(s, allowed="\t\n" if text else "") if isinstance(s, str) else []
            if bad:
                shown = ", ".join(repr(ch) for ch in bad)
                raise ValueError(f"contains the control character{'s' if len(bad) > 1 else ''} {shown}; "
                                 + ("only tabs and newlines may appear in this text" if text else
                                    "names, paths and ids must be plain text"))
        return v


PositiveFloat = Annotated[float, Field(gt=0, allow_inf_nan=False)]



class RunSelector(Strict):
    """Selects runs by their settings; a field left out matches anything."""

    model: str | None = Field(None, description="Model name.")
    dataset: str | None = Field(None, description="Dataset name.")
    learning_rate: PositiveFloat | None = Field(None, description="Peak learning rate.")
    epochs: int | None = Field(None, description="Epochs.")
    dataset_fraction: float | None = Field(None, description="Fraction of the training set.")
    seed: int | None = Field(None, description="Seed (grid.seeds or a run's seed; the spec's seed otherwise).")

    hash_neutral: ClassVar[dict[str, Any]] = {"seed": None}  # as before seeds were an axis
