#!/usr/bin/env bash
# Checks, without a Docker daemon, that the Dockerfile's build stage copies everything cargo
# needs: copies exactly what its COPY lines name into an empty folder and asks cargo to resolve (`cargo tree`, host target only: `cargo metadata` would want every platform's crates)
# the workspace there (offline, locked). `docker build .` once failed because `crates/` (a
# workspace member) was not copied; this catches that class of mistake in CI.
set -euo pipefail
cd "$(dirname "$0")/.."
ctx=$(mktemp -d)
trap 'rm -rf "$ctx"' EXIT
# Only the build stage (up to the second FROM); COPY --from=... lines belong to the runtime stage.
awk '/^FROM /{n++} n==1 && /^COPY / && !/--from=/' Dockerfile | while read -r _ rest; do
  # shellcheck disable=SC2206
  parts=($rest)
  dest=${parts[${#parts[@]}-1]}
  unset 'parts[${#parts[@]}-1]'
  for src in "${parts[@]}"; do
    if [ "$dest" = "./" ] || [ "$dest" = "." ]; then
      cp -a "$src" "$ctx/"
    else
      mkdir -p "$ctx/$(dirname "$dest")"
      cp -a "$src" "$ctx/$dest"
    fi
  done
done
if ! (cd "$ctx" && cargo tree --locked --offline --workspace >/dev/null); then
  echo "the Dockerfile's build stage does not copy everything cargo needs (see the error above)" >&2
  exit 1
fi
echo "docker context ok: cargo resolves the workspace from what the Dockerfile copies"
