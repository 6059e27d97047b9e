#!/usr/bin/env bash
# Installs the Debian packages lmc builds and tests with (skips what is there).
set -euo pipefail
PKGS="make gcc clang libomp-dev libopenblas-dev libmicrohttpd-dev openmpi-bin libopenmpi-dev
      python3 python3-torch python3-numpy libclang-rt-14-dev time chromium curl procps"
missing=()
# Node.js may come from elsewhere (nodesource); only install Debian's if absent
command -v node >/dev/null || missing+=(nodejs)
command -v npm >/dev/null || missing+=(npm)
for p in $PKGS; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
    echo "bootstrap: installing ${missing[*]}"
    SUDO=""; [ "$(id -u)" -eq 0 ] || SUDO=sudo
    $SUDO apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi
