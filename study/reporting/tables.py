"""Tables as files: every cell rounded once, then written as CSV, Markdown and LaTeX with the very
same text, so a number copied from any of them into a lab report is the same number (the trials
table's CSV, a data file, keeps every digit).

Markdown comes from pandas (`to_markdown`, through `tabulate`), LaTeX from pandas' `Styler`
(booktabs rules, LaTeX special characters escaped).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd


def formatted(frame: pd.DataFrame) -> pd.DataFrame:
    """Every cell as the text all three formats write."""
    return frame.astype(object).apply(lambda column: column.map(cell_text))


def cell_text(value: Any) -> str:
    """4 significant digits, large numbers whole, booleans as true/false, missing as empty."""
    if value is None or (not isinstance(value, str) and pd.isna(value)):
        return ""
    if isinstance(value, (bool, np.bool_)):
        return "true" if value else "false"
    if isinstance(value, (int, np.integer)):
        return str(int(value))
    if isinstance(value, (float, np.floating)):
        return f"{value:.0f}" if abs(value) >= 1e4 else f"{value:.4g}"
    return str(value)


def write_table(frame: pd.DataFrame, folder: Path, stem: str, exact_csv: bool = False) -> list[Path]:
    """`frame` as `<stem>.csv`, `.md` and `.tex` in `folder`; returns the three paths. With
    `exact_csv` the CSV keeps every digit (a data file for users' own analysis) and only the
    Markdown and LaTeX are rounded."""
    text = formatted(frame)
    paths = [folder / f"{stem}.{ext}" for ext in ("csv", "md", "tex")]
    (frame if exact_csv else text).to_csv(paths[0], index=False)
    paths[1].write_text(markdown_table(text) + "\n")
    paths[2].write_text(latex_table(text))
    return paths


def markdown_table(text: pd.DataFrame) -> str:
    """A pipe table of formatted cells (`|` escaped); numbers right-aligned, text left."""
    numeric = _numeric_columns(text)
    text = text.map(lambda cell: str(cell).replace("|", "\\|"))
    return text.to_markdown(index=False, disable_numparse=True, colalign=["right" if n else "left" for n in numeric])


def latex_table(text: pd.DataFrame) -> str:
    """A booktabs tabular (`\\usepackage{booktabs}`); numbers right-aligned, text left."""
    numeric = _numeric_columns(text)
    styler = text.style.hide(axis="index").format(escape="latex").format_index(escape="latex", axis=1)
    body = styler.to_latex(column_format="".join("r" if n else "l" for n in numeric), hrules=True)
    return "% requires \\usepackage{booktabs}\n" + body


def _numeric_columns(text: pd.DataFrame) -> list[bool]:
    return [bool(text[c].map(lambda s: s == "" or _is_number(s)).all()) for c in text]


def _is_number(text: str) -> bool:
    try:
        float(text)
        return True
    except ValueError:
        return False
