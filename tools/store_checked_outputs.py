"""Store, in a source notebook, the quick-profile outputs of its ``# NBVAL_CHECK_OUTPUT`` cells.

nbval (``--nbval-lax``) compares those cells' text outputs with the stored ones; every
other cell is only executed. Usage: ``python tools/store_checked_outputs.py notebooks/NAME.ipynb``.
"""

import sys
import tempfile
from pathlib import Path

import nbformat
import papermill

MARKER = "# NBVAL_CHECK_OUTPUT"


def store(path: Path) -> int:
    with tempfile.TemporaryDirectory() as tmp:
        executed = Path(tmp) / path.name
        papermill.execute_notebook(str(path), str(executed), kernel_name="python3", cwd=str(path.parent), progress_bar=False)
        runs = [c for c in nbformat.read(executed, as_version=4).cells if c.cell_type == "code" and "injected-parameters" not in c.metadata.get("tags", [])]
    source = nbformat.read(path, as_version=4)
    code = [c for c in source.cells if c.cell_type == "code"]
    stored = 0
    for cell, run in zip(code, runs, strict=True):
        checked = cell.source.startswith(MARKER)
        cell.outputs = [o for o in run.outputs if o.output_type != "display_data"] if checked else []
        cell.execution_count = run.execution_count if checked else None
        stored += checked
    nbformat.write(source, path)
    return stored


if __name__ == "__main__":
    for name in sys.argv[1:]:
        print(f"{name}: stored the outputs of {store(Path(name))} checked cells")
