#!/usr/bin/env bash
# Sets up a Debian 12 machine (as root) for shoal: Debian packages, dockerd,
# npm install, build, local test images. Idempotent; safe to run again.
set -euo pipefail
cd "$(dirname "$0")/.."

PKGS=(docker.io busybox-static iproute2 iptables nftables dnsutils dnsperf dnsmasq-base socat wrk iperf3 etcd-server etcd-client nginx-light conntrack procps prometheus shellcheck systemd)
missing=()
for p in "${PKGS[@]}"; do dpkg -s "$p" >/dev/null 2>&1 || missing+=("$p"); done
if [ ${#missing[@]} -gt 0 ]; then
  echo "setup: installing ${missing[*]}"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi
# the Debian etcd-server package starts a system etcd on 2379; shoal runs its own
systemctl disable --now etcd >/dev/null 2>&1 || true

if ! docker version >/dev/null 2>&1; then
  echo "setup: starting dockerd"
  (dockerd >/var/log/dockerd.log 2>&1 &)
  for _ in $(seq 1 60); do docker version >/dev/null 2>&1 && break; sleep 0.5; done
  docker version >/dev/null 2>&1 || { echo "setup: dockerd did not start; see /var/log/dockerd.log" >&2; exit 1; }
fi

sysctl -qw net.ipv4.ip_forward=1 || true

if [ ! -d node_modules ] || [ package-lock.json -nt node_modules/.package-lock.json ]; then
  echo "setup: npm ci"
  npm ci --no-audit --no-fund >/dev/null
fi
echo "setup: build"
npm run -s build
deploy/images/build.sh
echo "setup: done"
