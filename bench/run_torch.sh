#!/bin/sh
# Makes bench/.venv with torch and transformers from PyPI (once), then runs a bench
# script: torch_sampler.py by default, or the script named first (torch_update.py).
# Not run by CI.
set -e
here=$(cd "$(dirname "$0")" && pwd)
venv="$here/.venv"
if [ ! -x "$venv/bin/python" ]; then
    python3 -m venv "$venv"
    "$venv/bin/pip" install --quiet torch transformers safetensors
fi
script=torch_sampler.py
case "$1" in
    *.py) script=$1; shift ;;
esac
exec "$venv/bin/python" "$here/$script" "$@"
