from __future__ import annotations

import re
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


# what a progress bar or tqdm's missing-widget warning leaves in an output
NOISE = re.compile(r"\d+%\||it/s\]|examples/s|TqdmWarning|IProgress")


def assert_quiet(notebook: nbformat.NotebookNode) -> None:
    """No output of any cell holds a progress bar or tqdm's IProgress warning (issue 42): the
    notebooks pass progress=False and call quiet_progress(False) first."""
    for cell in notebook.cells:
        for output in cell.get("outputs", []):
            text = str(output.get("text", "")) + str(output.get("data", {}).get("text/plain", ""))
            assert not NOISE.search(text), (cell.source[:60], text[:300])


@needs(IMDB)
def test_quickstart_notebook_runs(tmp_path, monkeypatch):
    notebook = execute("quickstart.ipynb", tmp_path, monkeypatch)
    assert (tmp_path / "quickstart" / "model.safetensors").exists()
    assert not (NOTEBOOKS / "runs").exists()
    outputs = [o for cell in notebook.cells if cell.cell_type == "code" for o in cell.outputs]
    assert not [o for o in outputs if o.output_type == "error"]
    assert any("image/png" in o.get("data", {}) for o in outputs)
    assert_quiet(notebook)
    # the demo is the shipped model's, beside the toy's: right about the notebook's own example
    lines = "".join(o.get("text", "") for o in notebook.cells[-1].outputs).splitlines()
    wonderful = next(line for line in lines if line.startswith("A wonderful, moving film."))
    assert "shipped imdb: positive" in wonderful and "tiny toy: " in wonderful
    dull = next(line for line in lines if line.startswith("Dull, far too long"))
    assert "shipped imdb: negative" in dull


@needs(TEXTS / "timemachine.txt")
def test_char_lm_notebook_runs(tmp_path, monkeypatch):
    notebook = execute("char_lm.ipynb", tmp_path, monkeypatch)
    assert (tmp_path / "charlm-quickstart" / "model.safetensors").exists()
    text = str(notebook.cells[-1].outputs)
    assert "greedy : time traveller" in text and "T=1.2" in text
    assert not (NOTEBOOKS / "runs").exists()
    assert_quiet(notebook)


def test_notebooks_are_saved_without_outputs():
    for path in NOTEBOOKS.glob("*.ipynb"):
        notebook = nbformat.read(path, as_version=4)
        assert not any(cell.get("outputs") for cell in notebook.cells), path.name
        pytest.importorskip("nbformat").validate(notebook)
