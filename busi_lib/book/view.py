"""Notebook display: pandas and matplotlib settings, Markdown notes, formatted tables, units.

Conventions: our metrics are stored as fractions and shown as percentages with two decimals
(AUC, ECE and Brier scores as fractions with three), as the paper prints them. Functions that
display work in plain Python too (tests, scripts), where they print.
"""

from __future__ import annotations

from typing import Iterable, Sequence

import numpy as np
import pandas as pd

#: Columns shown as fractions (three decimals), not percentages.
FRACTION_COLS = ("AUC", "ECE", "Brier")


def setup_display(dpi: int = 90) -> None:
    """pandas and matplotlib settings shared by every notebook (deterministic text output)."""
    import matplotlib.pyplot as plt

    pd.set_option("display.max_columns", 60)
    pd.set_option("display.width", 250)
    pd.set_option("display.max_colwidth", 120)
    pd.set_option("display.max_rows", 200)
    plt.rcParams.update({"figure.dpi": dpi, "savefig.dpi": dpi, "figure.autolayout": False,
                         "axes.grid": True, "grid.alpha": 0.3, "axes.spines.top": False,
                         "axes.spines.right": False, "font.size": 9})


def _in_ipython() -> bool:
    try:
        from IPython import get_ipython

        return get_ipython() is not None
    except ImportError:  # pragma: no cover
        return False


def _display(obj) -> None:
    if _in_ipython():
        from IPython.display import display

        display(obj)
    else:  # plain Python (tests, scripts)
        print(obj if not hasattr(obj, "data") else obj.data)


def md(text: str) -> None:
    """Display Markdown (plain text outside IPython)."""
    if _in_ipython():
        from IPython.display import Markdown

        _display(Markdown(text))
    else:
        print(text)


def note(text: str) -> None:
    """A short highlighted note (e.g. "this table is incomplete")."""
    md(f"> **Note.** {text}")


def fmt(df: pd.DataFrame, decimals: int = 2, fraction_decimals: int = 3,
        missing: str = "—") -> pd.DataFrame:
    """Format numbers as strings (fixed decimals; ``—`` for missing) for stable display."""
    out = df.copy().astype(object)
    for col in df.columns:
        name = str(col[0] if isinstance(col, tuple) else col).lstrip("Δ").split(" ")[0]
        d = fraction_decimals if name in FRACTION_COLS else decimals
        vals = []
        for v in df[col].tolist():
            if isinstance(v, (bool, np.bool_)):
                vals.append("yes" if v else "NO")
            elif v is None or v is pd.NA or (isinstance(v, (float, np.floating))
                                               and not np.isfinite(v)):
                vals.append(missing)
            elif isinstance(v, (int, np.integer)):
                vals.append(str(int(v)))
            elif isinstance(v, (float, np.floating)):
                vals.append(f"{v:.{d}f}")
            else:
                vals.append(str(v))
        out[col] = vals
    return out


class Table:
    """A formatted table displayed without pandas' row numbers: HTML in the book, aligned text
    in plain Python (and in the text that the nbval references compare)."""

    def __init__(self, df: pd.DataFrame):
        self.df = df

    def _repr_html_(self) -> str:
        return self.df.to_html(index=False, justify="left")

    def __repr__(self) -> str:
        return self.df.to_string(index=False)


def show(df: pd.DataFrame, caption: str | None = None, **kw) -> None:
    """Display a formatted table (see :func:`fmt`) under a bold caption. A table whose rows
    are only numbered (a default ``RangeIndex``) is shown without those numbers; a named
    index is shown."""
    if caption:
        md(f"**{caption}**")
    out = fmt(df, **kw)
    numbered = isinstance(df.index, pd.RangeIndex) and df.index.name is None
    _display(Table(out) if numbered else out)


def pct(name: str, v: float) -> float:
    """A stored fraction in display units: percent, except for :data:`FRACTION_COLS`."""
    return v if name in FRACTION_COLS else 100 * v


def metric_label(key: str) -> str:
    """``seg_DC_mean`` -> ``DC``, ``cls_AUC`` -> ``AUC``, ``seg_DC_pooled`` -> ``DC pooled``."""
    parts = key.split("_")
    if parts[0] == "seg":
        return parts[1] + (" pooled" if parts[-1] == "pooled" else "")
    if parts[0] == "cls":
        return "_".join(parts[1:])
    return key


def markdown_table(header: Sequence[str], rows: Iterable[Sequence[str]]) -> str:
    """A pipe table from already formatted cells."""
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(r) + " |" for r in rows]
    return "\n".join(lines) + "\n"


def parameters_line(**params) -> str:
    """One Markdown line naming the notebook parameters in effect, in the order given."""
    if not params:
        raise ValueError("parameters_line: no parameter given; pass e.g. profile=profile")
    return "Parameters: " + " · ".join(f"`{k}` = {v!r}" for k, v in params.items())
