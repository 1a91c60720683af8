#!/usr/bin/env bash
# The state directory is full (ENOSPC, a tmpfs; root only); see save_fail_lib.sh.
MODE=enospc
. "$RBEE_SRC/tests/workers_errors/save_fail_lib.sh"
