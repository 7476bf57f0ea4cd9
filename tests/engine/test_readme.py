"""The README's "Use the engine from Python" example runs as written."""

from __future__ import annotations

import re

from tests.support import ROOT


def test_readme_engine_example_runs() -> None:
    text = (ROOT / "README.md").read_text()
    section = text.split("## Use the engine from Python", 1)[1]
    code = re.search(r"```python\n(.*?)```", section, re.S).group(1)
    namespace: dict = {}
    exec(compile(code, "README.md", "exec"), namespace)  # noqa: S102 - our own README
    trainer = namespace["trainer"]
    assert trainer.step == 6000
    assert trainer.evaluate()["test_accuracy"] >= 0.9
    assert namespace["trace"]["layers"][0]["grad_W"] is not None
