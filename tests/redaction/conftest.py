"""Redaction fixtures: a small ground-truth clip (real faces on real CCTV frames), analysed once per session."""

from __future__ import annotations

from pathlib import Path

import pytest

from cctv_gov.redaction.schemas import Tuning
from cctv_gov.redaction.service import Analysis, analyse
from tests.fixtures.tiers import report_tier
from tests.redaction import groundtruth


@pytest.fixture(scope="session")
def truth(tmp_path_factory: pytest.TempPathFactory) -> groundtruth.Truth:
    if not groundtruth.available():
        pytest.skip("needs Debian's opencv-doc examples (apt-get install opencv-doc); .ci/run installs them")
    report_tier("opencv-doc", "yes")
    return groundtruth.build(tmp_path_factory.mktemp("truth"), frames=90, scale=1.0)


@pytest.fixture(scope="session")
def analysis(truth: groundtruth.Truth) -> Analysis:
    return analyse(truth.path, Tuning())


@pytest.fixture
def out(tmp_path: Path) -> Path:
    return tmp_path / "redacted.mp4"
