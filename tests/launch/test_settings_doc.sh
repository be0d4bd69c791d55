#!/usr/bin/env bash
# docs/settings.md is the output of `shoal settings --markdown`: fails when a setting was added
# or changed in the registry without regenerating the file (`make docs`).
# Usage: test_settings_doc.sh SHOAL_BIN SOURCE_DIR
set -u
shoal=${1:?usage: test_settings_doc.sh SHOAL_BIN SOURCE_DIR}
doc=${2:?}/docs/settings.md
if ! "$shoal" settings --markdown | diff -u "$doc" -; then
    echo "FAIL: $doc is stale: run 'make docs' and commit the result" >&2
    exit 1
fi
echo "test_settings_doc: $doc matches the registry"
