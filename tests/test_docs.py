"""The teaching pages in docs/ run: every ```python block of a page is
executed in order in one namespace, so their asserts check the numbers the
prose quotes against the code that produces them."""

import re
from pathlib import Path

import pytest

DOCS = Path(__file__).resolve().parent.parent / "docs"
BLOCK = re.compile(r"^```python\n(.*?)^```", re.S | re.M)
PAGES = sorted(p for p in DOCS.glob("*.md") if BLOCK.search(p.read_text(encoding="utf-8")))


def test_there_are_executable_pages():
    assert PAGES, "docs/ should hold pages with python blocks"


@pytest.mark.parametrize("page", PAGES, ids=lambda p: p.name)
def test_page_code_blocks_run(page):
    namespace: dict = {"__name__": f"docs.{page.stem}"}
    for n, block in enumerate(BLOCK.findall(page.read_text(encoding="utf-8")), 1):
        try:
            exec(compile(block, f"{page.name}[block {n}]", "exec"), namespace)
        except Exception as exc:  # name the block in the failure
            raise AssertionError(f"{page.name} block {n} failed: {exc!r}\n{block}") from exc
