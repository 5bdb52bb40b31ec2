#!/usr/bin/env bash
# Builds the native parts: the Node-API addon (through @napi-rs/cli) and
# pasta's namespace agent, both next to package.json where ts/native.ts
# looks for them first.
set -euo pipefail
cd "$(dirname "$0")/.."
# The Debian crates the build needs: installed as root, named otherwise.
scripts/setup-deps.sh
npx napi build --platform --release \
  --manifest-path crates/passt-node/Cargo.toml --package-json-path package.json --output-dir .
cargo build --release --quiet -p passt-core --bin passt-nsagent
cp "${CARGO_TARGET_DIR:-target}/release/passt-nsagent" ./passt-nsagent
