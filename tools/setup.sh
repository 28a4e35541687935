#!/usr/bin/env bash
# Installs every Debian package Parley needs to build, test and run.
# Idempotent; runs as root on a fresh Debian 12 machine without prompts.
set -euo pipefail

packages=(
  build-essential cmake ninja-build ccache pkg-config
  libcaf-dev                        # actor runtime (CAF 0.17)
  libcaf-openssl0.17 libssl-dev openssl # mutual TLS between nodes; CLI: test certificates
  libprotobuf-dev protobuf-compiler # wire protocol and storage records
  libleveldb-dev libsnappy-dev      # storage (leveldb's CMake config links snappy)
  libspdlog-dev libfmt-dev          # structured logging
  doctest-dev                       # unit, sim and e2e tests
  libboost-dev                      # Beast/Asio: HTTP and WebSocket gateway
  libsodium-dev                     # Argon2id password hashes, random tokens
  libgoogle-perftools-dev           # tcmalloc for parleyd (RESULTS.md, issue 3)
  etcd-server etcd-client          # cluster control plane (issue 22; tests start their own)
  libedit-dev                      # parleyctl's shell: line editing, history, completion
)

missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" \
    || missing+=("$p")
done

if ((${#missing[@]})); then
  echo "setup: installing ${missing[*]}"
  if [ "$(id -u)" -ne 0 ]; then
    echo "setup: missing packages and not root; run as root" >&2
    exit 1
  fi
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -q
  apt-get install -y -q --no-install-recommends "${missing[@]}"
else
  echo "setup: all packages present"
fi
