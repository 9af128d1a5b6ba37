"""Every notebook in notebooks/ runs top to bottom and draws its figures.

Executed with nbclient on the `python3` kernel of the test environment (jupyter_client
starts it with this interpreter, so it imports the `pip install -e .` package), from the
notebooks folder as a user opening them would. Each takes a few seconds.
"""

from __future__ import annotations

from pathlib import Path

import nbclient
import nbformat
import pytest

# The notebook stack (nbclient, nbformat, ipykernel, matplotlib) comes with the `dev` extra.

NOTEBOOKS_DIR = Path(__file__).resolve().parents[1] / "notebooks"
NOTEBOOKS = sorted(NOTEBOOKS_DIR.glob("*.ipynb"))
CELL_TIMEOUT_S = 600


def test_the_shipped_notebooks_are_found() -> None:
    names = {p.name for p in NOTEBOOKS}
    assert {"workload_characterisation.ipynb", "plan_visualisation.ipynb"} <= names


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_notebook_is_committed_without_outputs(path: Path) -> None:
    nb = nbformat.read(path, as_version=4)
    code = [c for c in nb.cells if c.cell_type == "code"]
    assert code
    dirty = [i for i, c in enumerate(code) if c.outputs or c.execution_count is not None]
    assert not dirty, f"{path.name}: clear the outputs of code cells {dirty} before committing"


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_notebook_executes_and_draws(path: Path, shared_data: Path) -> None:
    # shared_data: the characterisation notebook reads the public traces beside the repo.
    nb = nbformat.read(path, as_version=4)
    client = nbclient.NotebookClient(
        nb,
        timeout=CELL_TIMEOUT_S,
        kernel_name="python3",
        resources={"metadata": {"path": str(NOTEBOOKS_DIR)}},
    )
    client.execute()  # raises CellExecutionError naming the cell when one fails
    outputs = [o for c in nb.cells if c.cell_type == "code" for o in c.outputs]
    assert not [o for o in outputs if o.output_type == "error"]
    figures = [o for o in outputs if "image/png" in o.get("data", {})]
    assert len(figures) >= 3, f"{path.name}: expected its figures, got {len(figures)}"
