#!/bin/sh
# Build the raftmq container image without a registry: a static binary on the host, then a
# FROM-scratch image holding only that binary. Usage: docker/build-image.sh [TAG]
# (default raftmq:latest). Needs cargo and Docker; pulls nothing.
set -eu

tag=${1:-raftmq:latest}
cd "$(dirname "$0")/.."

# Static (crt-static glibc) build in its own target dir, so the usual target/ is untouched.
RUSTFLAGS='-C target-feature=+crt-static' cargo build --release -p raftmq --bin raftmq \
    --target x86_64-unknown-linux-gnu --target-dir target/static

# The release profile keeps debug info (Cargo.toml); the image gets a copy without it
# (symbols stay, so backtraces keep function names): ~19 MB instead of ~100 MB.
mkdir -p target/static/image
if command -v strip >/dev/null 2>&1; then
    strip --strip-debug -o target/static/image/raftmq \
        target/static/x86_64-unknown-linux-gnu/release/raftmq
else
    cp target/static/x86_64-unknown-linux-gnu/release/raftmq target/static/image/raftmq
fi

# The build context is only target/static/image/raftmq (.dockerignore).
docker build -t "$tag" .
echo "built image $tag"
