"""Where the schemas and default fixtures live, in a checkout and in an installed wheel."""

from __future__ import annotations

from pathlib import Path

_PACKAGE = Path(__file__).resolve().parent


def data_dir(name: str) -> Path:
    """`name` is "schemas" or "fixtures".

    A wheel carries them inside the package as `_schemas` / `_fixtures`; a checkout (or an
    editable install) reads the top-level folders, so edits there take effect at once.
    """
    packaged = _PACKAGE / f"_{name}"
    if packaged.is_dir():
        return packaged
    return _PACKAGE.parent / name
