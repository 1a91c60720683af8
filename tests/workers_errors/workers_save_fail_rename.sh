#!/usr/bin/env bash
# workers.json cannot be renamed into place (EISDIR); see save_fail_lib.sh.
MODE=rename
. "$RBEE_SRC/tests/workers_errors/save_fail_lib.sh"
