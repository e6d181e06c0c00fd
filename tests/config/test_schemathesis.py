"""A short Schemathesis pass in the suite (the long one runs in .ci/run): the app, set up from
scratch and served by gunicorn, fuzzed against its own schema as each demo role, answers no
server error and nothing the schema does not describe."""

import importlib.util
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent.parent

pytestmark = [pytest.mark.schemathesis, pytest.mark.slow]


def _fuzz_module():
    spec = importlib.util.spec_from_file_location("fuzz_api", ROOT / ".ci" / "fuzz_api.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_the_api_answers_as_its_schema_says_for_every_role(tmp_path):
    if not (Path(sys.executable).parent / "schemathesis").exists():
        pytest.skip("schemathesis is not installed (make install)")
    # its own SQLite database and gunicorn, so the suite's database is left alone
    failed = _fuzz_module().serve_and_fuzz(
        max_examples=2, max_time=15, report_dir=tmp_path, scratch_database=True
    )
    assert failed == 0, "schemathesis found problems; see its output above"
