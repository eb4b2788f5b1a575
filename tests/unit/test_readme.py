"""The README stays true: its configuration table names every setting, and CI runs its test line."""

from __future__ import annotations

import pathlib
import re

from decentro_core.settings import SETTINGS

ROOT = pathlib.Path(__file__).resolve().parents[2]
README = (ROOT / "README.md").read_text()


def _sh_blocks() -> list[str]:
    return [block.strip() for block in re.findall(r"```sh\n(.*?)```", README, flags=re.S)]


def test_the_configuration_table_names_every_core_setting():
    missing = [env for env, _, _ in SETTINGS if f"| `{env}` |" not in README]
    assert missing == []


def test_ci_runs_exactly_the_readme_test_line():
    test_line = next(b for b in _sh_blocks() if "pytest" in b)
    ci = (ROOT / ".ci" / "run").read_text().splitlines()
    assert test_line in ci


def test_the_readme_demo_line_starts_the_example_app():
    demo_line = next(b for b in _sh_blocks() if "flask --app example_app run" in b)
    assert demo_line.startswith("python3 -m venv .venv && ")


def test_the_configuration_table_names_every_flask_option():
    from flask_decentro.config import FLASK_OPTIONS

    missing = [key for key, _, _ in FLASK_OPTIONS if f"| `{key}` |" not in README]
    assert missing == []


def test_the_readme_walk_through_is_the_one_the_e2e_test_runs():
    # tests/e2e/test_demo_walkthrough.py executes the block in docs/flask.md; the README's
    # copy must be the same text, or the README could drift from what is proven to work.
    docs = (ROOT / "docs" / "flask.md").read_text()
    block = re.compile(r"```bash\nflask --app example_app run.*?```", re.S)
    assert block.search(README) is not None
    assert block.search(README).group(0) == block.search(docs).group(0)
