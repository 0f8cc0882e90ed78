"""The documents stay usable: a short README whose links resolve, figures by topic."""

from __future__ import annotations

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


def test_benchmarks_open_with_the_current_table_and_speak_by_topic():
    text = (ROOT / "BENCHMARKS.md").read_text(encoding="utf-8")
    headings = re.findall(r"^##+ (.*)$", text, flags=re.MULTILINE)
    assert headings[0] == "Current figures"
    assert not [h for h in headings if h.lower().startswith("session")]
    assert "| figure | value | command | machine, date |" in text
