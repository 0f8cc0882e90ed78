"""The documents stay usable: a short README whose links resolve, figures by topic."""

from __future__ import annotations

import ast
import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def local_links(path: Path) -> list[Path]:
    links = re.findall(r"\]\(([^)#]+)(?:#[^)]*)?\)", path.read_text(encoding="utf-8"))
    return [path.parent / link for link in links if "://" not in link]


def test_readme_is_short_and_its_links_resolve():
    readme = ROOT / "README.md"
    assert len(readme.read_text(encoding="utf-8").splitlines()) <= 150
    pages = local_links(readme)
    assert {p.resolve() for p in pages} >= {(ROOT / "docs" / f"{name}.md").resolve() for name in
                                            ("training", "pretraining", "own-data", "serving",
                                             "distributed", "charlm", "reproducing")}
    for page in pages + [link for doc in (ROOT / "docs").glob("*.md") for link in
                         local_links(doc)]:
        assert page.exists(), page


def _close(actual, shown, tolerance: float) -> bool:
    """``actual`` as the README shows it: the same structure, labels and keys, each score
    within ``tolerance`` of the two digits shown."""
    if isinstance(shown, float):
        return isinstance(actual, float) and abs(actual - shown) <= tolerance
    if isinstance(shown, dict):
        return (isinstance(actual, dict) and actual.keys() == shown.keys()
                and all(_close(actual[key], shown[key], tolerance) for key in shown))
    if isinstance(shown, list):
        return (isinstance(actual, list) and len(actual) == len(shown)
                and all(_close(a, b, tolerance) for a, b in zip(actual, shown, strict=True)))
    return actual == shown


def test_readme_prediction_example_shows_what_the_shipped_model_returns():
    """The README's ``>>>`` lines, run: each output line is what the call returns, its scores
    rounded to two digits (within 0.02: bfloat16 autocast and float32 differ by up to 0.017 on
    real reviews, and the CPU picks which runs). A new shipped model updates them."""
    block = (ROOT / "README.md").read_text(encoding="utf-8").split("```python\n>>>", 1)[1]
    lines = (">>>" + block.split("```", 1)[0]).strip().splitlines()
    namespace: dict = {}
    checked = 0
    for line, following in zip(lines, lines[1:] + [""]):
        if not line.startswith(">>> "):
            continue
        code = line[4:]
        if following.startswith(">>>") or not following:
            exec(code, namespace)
            continue
        actual = eval(code, namespace)
        assert _close(actual, ast.literal_eval(following), 0.005 + 0.017), (code, actual)
        checked += 1
    assert checked == 2


def test_benchmarks_open_with_the_current_table_and_speak_by_topic():
    text = (ROOT / "BENCHMARKS.md").read_text(encoding="utf-8")
    headings = re.findall(r"^##+ (.*)$", text, flags=re.MULTILINE)
    assert headings[0] == "Current figures"
    assert not [h for h in headings if h.lower().startswith("session")]
    assert "| figure | value | command | machine, date |" in text


def test_every_install_line_names_this_projects_distribution():
    """The name ``sentiment`` on PyPI is another project (0.0.1, 2021): every line that tells a
    user to install this one says ``sentiment-lstm`` (the import package stays ``sentiment``)."""
    from sentiment.kinds.onnx import inference_session  # noqa: F401  (its hint is checked below)
    from sentiment.serve.app import NEEDS_EXTRA

    places = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md")),
              *sorted((ROOT / "notebooks").glob("*.ipynb")), *sorted((ROOT / "sentiment").rglob(
                  "*.py"))]
    wrong = []
    for path in places:
        for line in path.read_text(encoding="utf-8").splitlines():
            command = re.split(r"&&|;|\||#", line.split("pip install", 1)[-1])[0]
            if "pip install" in line and re.search(r"""(?<![\w./-])sentiment(\[|["'\s]|$)""",
                                                   command):
                wrong.append(f"{path.relative_to(ROOT)}: {line.strip()}")
    assert not wrong, "\n".join(wrong)
    assert "sentiment-lstm[serve]" in NEEDS_EXTRA
    import tomllib

    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    assert project["name"] == "sentiment-lstm"


def test_the_readme_cross_domain_example_runs_on_one_to_five_stars(trained_model, tmp_path,
                                                                  monkeypatch):
    """The README's --label-map and --skip-labels, taken from its text, map every star of
    ordinary 1-5 star data (an earlier example left 2 and 4 unmapped and failed)."""
    import shlex

    from sentiment.cli.main import main

    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    command = re.search(r"sentiment evaluate --cross-domain [^\n]*\\\n[^\n]*", readme).group(0)
    words = shlex.split(command.replace("\\\n", " ").split("#")[0])
    rules = words[words.index("--label-map"):]
    rows = ["body,stars"] + [f'"{text}",{stars}' for stars, text in enumerate(
        ["Awful and dull", "Boring", "It was a film", "Good fun", "Wonderful, superb"], 1)] * 4
    (tmp_path / "products.csv").write_text("\n".join(rows) + "\n")
    monkeypatch.chdir(tmp_path)
    assert main(["evaluate", "--model", str(trained_model), "--cross-domain", "products.csv",
                 "--text-column", "body", "--label-column", "stars", "--no-baseline",
                 "--no-progress", *rules]) == 0
