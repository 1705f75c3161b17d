#!/usr/bin/env bash
# Runs every test: unit tests, the CLI integration tests, the reader tests, which read the
# warehouse back with pyarrow, DuckDB and Polars, and the daemon test that parses /metrics with
# prometheus_client, from a Python venv this script keeps in target/pyenv (created on first use,
# from PyPI, with the pinned versions below).
set -euo pipefail
cd "$(dirname "$0")/.."
venv=target/pyenv
if ! "$venv/bin/python" -c 'import pyarrow, duckdb, polars, pytz, prometheus_client' 2>/dev/null; then
  mkdir -p target
  python3 -m venv "$venv"
  "$venv/bin/pip" install -q pyarrow==26.0.1 duckdb==2.0.0 polars==2.1.0 pytz==2026.6 prometheus_client==0.26.0
fi
export INDIKATOR_PYTHON="$PWD/$venv/bin/python"
cargo test --locked "$@"
