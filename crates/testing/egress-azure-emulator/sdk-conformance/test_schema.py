"""The emulator's property schema (schema/arm-schema.json) is what gen_schema.py makes from the
pinned SDK's models: a newer SDK pin must regenerate it."""

import subprocess
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent


def test_committed_schema_matches_the_pinned_sdk():
    fresh = subprocess.run([sys.executable, str(HERE / "gen_schema.py"), "--print"],
                           check=True, capture_output=True, text=True).stdout
    committed = (HERE.parent / "schema" / "arm-schema.json").read_text()
    assert fresh == committed, "run sdk-conformance/gen_schema.py (the pinned SDK changed)"
