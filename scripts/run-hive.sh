#!/usr/bin/env bash
# Install what is missing, build, and start rbee-hive in the foreground on its embedded default:
# 127.0.0.1:7835 with the worker catalog shipped in packaging/catalog. Extra arguments go to
# rbee-hive (e.g. --port 7900). The CLI is then build/bin/rbee.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/deps.sh
cmake -S . -B build -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
cmake --build build -j"$(nproc)"
exec build/bin/rbee-hive "$@"
