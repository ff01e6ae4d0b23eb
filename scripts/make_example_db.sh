#!/bin/sh
# Regenerates bot_data.db.example: an empty master database at the current schema version.
# Run from anywhere; writes into the repository root.
set -eu
cd "$(dirname "$0")/.."
rm -f bot_data.db.example
cargo run --quiet -- init-master bot_data.db.example
