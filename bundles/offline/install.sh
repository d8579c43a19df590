#!/bin/sh
# Installs this Townsquare bundle; needs only python3 (the version in bundle.json), no network.
#   ./install.sh [--prefix DIR] [--no-health-check]     (default prefix: ~/townsquare)
#   ./install.sh verify                                  (checksums only)
# PYTHON=python3.11 ./install.sh ... picks another interpreter.
set -eu
here=$(CDPATH= cd -- "$(dirname -- "$0")" && pwd)
python=${PYTHON:-python3}
if [ "${1:-}" = "verify" ]; then
    shift
    exec "$python" "$here/installer.py" verify "$@"
fi
exec "$python" "$here/installer.py" install "$@"
