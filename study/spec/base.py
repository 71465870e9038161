"""What every sweep-file schema shares: the error it raises, values shown short in messages, and the strict base model.

Every schema of `study.spec` is a `StrictModel`: unknown keys and wrong types are refused, and an
unknown key's message names the allowed ones. A file or override that cannot be run raises
`ConfigError`, one line per problem.
"""

from __future__ import annotations

import reprlib
from typing import Any

from pydantic import BaseModel, ConfigDict, model_validator

from study.spec.errors import StudyError


class ConfigError(StudyError):
    """A sweep file (or a command-line override) that cannot be run; the message says why."""


_SHORT = reprlib.Repr()
_SHORT.maxlevel, _SHORT.maxlist, _SHORT.maxdict, _SHORT.maxstring, _SHORT.maxother = 2, 4, 4, 60, 60
_SHORT.maxtuple = _SHORT.maxset = _SHORT.maxfrozenset = 4


def shown(value: Any) -> str:
    """A value as an error message shows it: its repr, cut short (a huge value never expands)."""
    return _SHORT.repr(value)


class StrictModel(BaseModel):
    """A model that names the allowed keys when it meets an unknown one."""

    # strict: `trials: true` or `binarize: "yes"` are mistakes, not 1 and True.
    model_config = ConfigDict(extra="forbid", frozen=True, strict=True, allow_inf_nan=False)

    @model_validator(mode="before")
    @classmethod
    def _reject_unknown_keys(cls, data: Any) -> Any:
        if isinstance(data, dict):
            keys = [info.alias or name for name, info in cls.model_fields.items()]  # as a file writes them
            names = set(keys) | set(cls.model_fields)  # a recorded config (model_dump) has the field names
            unknown = [key for key in data if key not in names]
            if unknown:
                allowed = ", ".join(keys)
                raise ValueError(f"unknown key {shown(unknown[0])}; allowed keys: {allowed}")
        return data
