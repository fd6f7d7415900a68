#!/usr/bin/env bash
# README command 2: set up (once), then run the test suite, which builds the documentation too
# (tests/test_docs.py: sphinx-build -W over docs/en). Extra arguments go to pytest.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
bash tools/setup_env.sh
exec "$ROOT/.venv/bin/python" -m pytest tests -q -p no:cacheprovider "$@"
