"""The A/B tool runs a frontend from another commit's tree beside this checkout's and compares them."""

from __future__ import annotations

import shutil

import pytest

from benchmarks import ab


@pytest.mark.skipif(shutil.which("redis-server") is None, reason="needs redis-server on PATH")
def test_head_against_itself_reports_both_sides_and_their_ratio(capsys: pytest.CaptureFixture[str]) -> None:
    assert ab.main(["HEAD", "--op", "batch-set", "--items", "5", "--rounds", "1", "--calls", "3"]) == 0
    out = capsys.readouterr().out
    assert "old (HEAD), per item: cpu" in out
    assert "new (this checkout), per item: cpu" in out
    assert "new/old cpu:" in out
    assert "new/old p50:" in out
