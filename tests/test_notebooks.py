from __future__ import annotations

from pathlib import Path

import nbformat
import pytest
from conftest import IMDB, TEXTS, needs
from nbclient import NotebookClient

NOTEBOOKS = Path(__file__).resolve().parents[1] / "notebooks"


def execute(name: str, workdir: Path, monkeypatch) -> nbformat.NotebookNode:
    """Run a notebook from its own folder (its relative paths hold), writing its runs into
    ``workdir`` instead of the source tree (SENTIMENT_RUNS, which the kernel inherits)."""
    monkeypatch.setenv("SENTIMENT_RUNS", str(workdir))
    notebook = nbformat.read(NOTEBOOKS / name, as_version=4)
    NotebookClient(notebook, timeout=600, kernel_name="python3",
                   resources={"metadata": {"path": str(NOTEBOOKS)}}).execute()
    return notebook


@needs(IMDB)
def test_quickstart_notebook_runs(tmp_path, monkeypatch):
    notebook = execute("quickstart.ipynb", tmp_path, monkeypatch)
    assert (tmp_path / "quickstart" / "model.safetensors").exists()
    assert not (NOTEBOOKS / "runs").exists()
    outputs = [o for cell in notebook.cells if cell.cell_type == "code" for o in cell.outputs]
    assert not [o for o in outputs if o.output_type == "error"]
    assert any("image/png" in o.get("data", {}) for o in outputs)
    assert "'label': " in str(notebook.cells[-1].outputs)


@needs(TEXTS / "timemachine.txt")
def test_char_lm_notebook_runs(tmp_path, monkeypatch):
    notebook = execute("char_lm.ipynb", tmp_path, monkeypatch)
    assert (tmp_path / "charlm-quickstart" / "model.safetensors").exists()
    text = str(notebook.cells[-1].outputs)
    assert "greedy : time traveller" in text and "T=1.2" in text


def test_notebooks_are_saved_without_outputs():
    for path in NOTEBOOKS.glob("*.ipynb"):
        notebook = nbformat.read(path, as_version=4)
        assert not any(cell.get("outputs") for cell in notebook.cells), path.name
        pytest.importorskip("nbformat").validate(notebook)
