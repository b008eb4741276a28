"""The optional parts of localmixup and the extras they need, checked before a part imports them.

``pip install localmixup`` gives the method (torch only); :mod:`localmixup.paper` (and the
``localmixup`` command) and :mod:`localmixup.theory` need an extra. Importing a part whose extra is
missing raises :class:`MissingExtra` with one line naming the extra to install.
"""

from __future__ import annotations

from importlib.util import find_spec

EXTRAS = {
    "paper": ("torchvision", "scipy", "pandas", "matplotlib", "seaborn", "tqdm"),
    "theory": ("scipy",),
}
"""The modules each extra of ``pyproject.toml`` installs (its distributions' import names)."""


class MissingExtra(ModuleNotFoundError):
    """An optional part of localmixup was imported without the extra it needs."""


def require(extra: str, part: str) -> None:
    """Raise :class:`MissingExtra` naming ``part``, the missing modules and ``pip install 'localmixup[extra]'``
    unless every module of ``extra`` (a key of :data:`EXTRAS`) can be imported."""
    missing = [module for module in EXTRAS[extra] if _absent(module)]
    if missing:
        raise MissingExtra(f"{part} needs the '{extra}' extra (missing: {', '.join(missing)}): "
                           f"pip install 'localmixup[{extra}]'", name=missing[0])


def _absent(module: str) -> bool:
    try:
        return find_spec(module) is None  # None too where sys.modules[module] is None (import blocked)
    except (ImportError, ValueError):
        return True
