"""Every Python block of docs/PYTHON.md runs, in order, in one namespace."""
import pathlib
import re

DOC = pathlib.Path(__file__).resolve().parents[2] / "docs" / "PYTHON.md"


def test_every_example_of_the_docs_runs():
    blocks = re.findall(r"```python\n(.*?)```", DOC.read_text(), flags=re.S)
    assert len(blocks) >= 7
    ns = {}
    for i, b in enumerate(blocks):
        exec(compile(b, f"docs/PYTHON.md block {i + 1}", "exec"), ns)
