"""What every chapter page calls first: the profile checked, figures drawn inline in the book's
theme, the header that says where the page's numbers come from, and tables of sentences as Markdown."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import TYPE_CHECKING, Any

import torch

from localmixup.paper.profiles import check_profile
from localmixup.paper.provenance import environment

if TYPE_CHECKING:
    import pandas as pd


def start_chapter(profile: str, *, allow_cpu: bool = False) -> torch.device:
    """First call of every chapter: validate the profile (:func:`check_profile`), draw figures
    inline whatever ``MPLBACKEND`` the kernel inherited, and set the book's plotting theme.

    A kernel started with ``MPLBACKEND=Agg`` (as ``make`` or CI may export) would otherwise draw
    nothing on ``plt.show()``, and the executed chapter would hold no figure. Without ipywidgets
    (the book's kernels), ``tqdm.auto`` falls back to a text bar with a warning that would be
    printed into the page: the warning is silenced, the bar kept.
    """
    device = check_profile(profile, allow_cpu=allow_cpu)
    import warnings

    import seaborn as sns
    from IPython import get_ipython
    from tqdm import TqdmWarning

    warnings.filterwarnings("ignore", message="IProgress not found", category=TqdmWarning)

    shell = get_ipython()
    if shell is not None:
        shell.run_line_magic("matplotlib", "inline")
    sns.set_theme(context="notebook", style="whitegrid", palette="colorblind")
    return device


def records_provenance(records: Iterable[Mapping[str, Any]]) -> dict[str, Any]:
    """Where and when ``records`` were made, from their ``environment`` fields: the number of
    records, the devices, the first and last dates and the commits (sorted, unique)."""
    envs = [r.get("environment") or {} for r in records]
    dates = sorted(e["date"] for e in envs if e.get("date"))
    return {
        "records": len(envs),
        "devices": sorted({e["device"] for e in envs if e.get("device")}),
        "first": dates[0] if dates else None,
        "last": dates[-1] if dates else None,
        "commits": sorted({e["commit"] for e in envs if e.get("commit")}),
    }


class ChapterHeader:
    """The header at the top of a chapter: where its numbers come from and how the page was executed.

    Shown where it is made (:func:`chapter_header`); a chapter that trains runs calls :meth:`update`
    with the records it renders once they are all there, so that the header describes the runs on the
    page, not those found before training.
    """

    def __init__(self, profile: str, planned: int | None, parameters: Mapping[str, object]) -> None:
        self.profile, self.planned, self.parameters = profile, planned, dict(parameters)
        self._handle: Any = None

    def markdown(self, records: Iterable[Mapping[str, Any]] | None) -> str:
        """The header's text for ``records`` (None: a chapter that computes everything in its own execution)."""
        env = environment()
        shown = ", ".join(f"`{k}={v!r}`" for k, v in self.parameters.items())
        planned = f" of the {self.planned} planned" if self.planned is not None else ""
        lines = [f"**Profile `{self.profile}`**" + (f" ({shown})." if shown else ".")]
        if records is not None:
            made = records_provenance(records)
            if made["records"]:
                when = made["first"][:10] if made["first"][:10] == made["last"][:10] else f"{made['first'][:10]} to {made['last'][:10]}"
                commits = ", ".join(f"`{c}`" for c in made["commits"][:3]) + (" and others" if len(made["commits"]) > 3 else "")
                lines.append(f"**Recorded runs:** {made['records']} record(s){planned}, made on {', '.join(made['devices'])}, "
                             f"{when}, at commit {commits}.")
            else:
                lines.append(f"**Recorded runs:** none yet{planned}; this execution trains them.")
        lines.append(f"**This page** was executed on {env['device']}, {env['date']}, commit `{env['commit']}`, torch {env['torch']}.")
        return "  \n".join(lines)

    def show(self, records: Iterable[Mapping[str, Any]] | None) -> None:
        from IPython.display import Markdown, display

        self._handle = display(Markdown(self.markdown(records)), display_id=True)

    def update(self, records: Iterable[Mapping[str, Any]]) -> None:
        """Describe ``records`` (the runs the page renders, trained or loaded) in the header shown above."""
        from IPython.display import Markdown

        if self._handle is None:
            raise RuntimeError("the header was not shown: call chapter_header() first")
        self._handle.update(Markdown(self.markdown(records)))


def chapter_header(profile: str, records: Iterable[Mapping[str, Any]] | None = None, *, planned: int | None = None,
                   **parameters: object) -> ChapterHeader:
    """Display at the top of a chapter where its numbers come from and how the page was executed;
    returns the :class:`ChapterHeader`, whose :meth:`~ChapterHeader.update` a chapter that trains
    calls once its runs are all recorded.

    Args:
        profile: the profile the chapter's numbers come from.
        records: the run records found before anything trains (``None`` for a chapter that computes
            everything in its own execution).
        planned: runs the profile plans (records present or to be trained by this execution).
        parameters: the chapter's parameters worth showing.
    """
    header = ChapterHeader(profile, planned, parameters)
    header.show(records)
    return header


def markdown_table(frame: pd.DataFrame) -> str:
    """``frame`` as a Markdown pipe table, its index levels as the first columns: a table of sentences
    that the book wraps to the column's width (an HTML DataFrame keeps each cell on one line)."""
    flat = frame.reset_index() if any(name is not None for name in frame.index.names) else frame
    header = [str(c) for c in flat.columns]
    rows = [[str(v).replace("|", "\\|").replace("\n", " ") for v in row] for row in flat.itertuples(index=False)]
    return "\n".join(["| " + " | ".join(header) + " |", "|" + "---|" * len(header)] + ["| " + " | ".join(r) + " |" for r in rows])
