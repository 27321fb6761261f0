"""The corpus of broken stack configs: each gives its one clear error, naming the key path.

Every file in tests/bad_configs/ starts with `# expect: <message>`; the message must be among
the problems the program reports, and no other kind of failure may happen on the way.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from components.config import ConfigError
from tools.offline import load_stack_file, run_program

CORPUS = sorted((Path(__file__).parent / "bad_configs").glob("*.yaml"))


def test_the_corpus_is_large_enough():
    assert len(CORPUS) >= 25


@pytest.mark.parametrize("path", CORPUS, ids=lambda p: p.stem)
def test_each_broken_config_gives_its_clear_error(path):
    expected = path.read_text().splitlines()[0].removeprefix("# expect: ")
    config, secret_keys, _ = load_stack_file(path)
    with pytest.raises(ConfigError) as caught:
        run_program(config, secret_keys)
    problems = caught.value.problems
    assert any(expected in p for p in problems), problems
    assert all(p.startswith("backups:") for p in problems), problems
