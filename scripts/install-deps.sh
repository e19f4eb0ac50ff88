#!/usr/bin/env bash
# Installs the Debian packages coreio needs, only those missing. Non-interactive.
set -euo pipefail
packages=(g++ cmake make ninja-build pkg-config libasio-dev libcli11-dev libprotobuf-dev protobuf-compiler liburing-dev
          libgtest-dev verilator clang libclang-rt-14-dev tshark
          pybind11-dev python3-pybind11 python3-pytest python3-dev
          libunicorn-dev gcc-aarch64-linux-gnu)  # the mock VM guest CPU and its example firmware
missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
[ ${#missing[@]} -eq 0 ] && exit 0
echo "installing: ${missing[*]}" >&2
sudo=""
[ "$(id -u)" -eq 0 ] || sudo="sudo"
export DEBIAN_FRONTEND=noninteractive
# tshark (for the Wireshark dissector tests) would ask whether non-root users may capture.
echo "wireshark-common wireshark-common/install-setuid boolean false" | $sudo debconf-set-selections
$sudo apt-get update -qq
$sudo apt-get install -y -qq --no-install-recommends "${missing[@]}" </dev/null
