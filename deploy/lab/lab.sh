#!/usr/bin/env bash
# Owns the netns lab: N "hosts" as network namespaces on one machine, wired by
# veth to an underlay bridge in the root namespace (see ARCHITECTURE.md,
# "Testing without a data centre").
#
#   lab.sh up N [prefix]   create namespaces PREFIX-1..N (default prefix slab);
#                          host i gets ${LAB_NET:-10.231.0}.(10+i)/24 on its eth0
#   lab.sh down [prefix]   remove that lab (namespaces, bridge, veths, FORWARD rule)
#   lab.sh gc [--all]      remove labs whose creator process is gone (or all labs)
#   lab.sh ls              list labs
#
# The root namespace gets no address on the lab bridge, so labs with the same
# underlay subnet can coexist. A lab is recorded in /run/shoal-lab/PREFIX with
# the pid of its owner (LAB_OWNER_PID, default the caller), which gc checks.
set -euo pipefail
export PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin

STATE=/run/shoal-lab
NET=${LAB_NET:-10.231.0}

die() { echo "lab.sh: $*" >&2; exit 1; }

check_prefix() {
  [[ $1 =~ ^[a-z][a-z0-9]{0,9}$ ]] || die "prefix must be 1-10 lowercase letters/digits starting with a letter: $1"
}

fwd_rule() { # $1 = -I/-D/-C, $2 = bridge
  iptables -w "$1" FORWARD -i "$2" -o "$2" -m comment --comment "shoal-lab $2" -j ACCEPT
}

up() {
  local n=${1:-} prefix=${2:-slab}
  [[ $n =~ ^[0-9]+$ && $n -ge 1 && $n -le 50 ]] || die "usage: lab.sh up N [prefix] (1 <= N <= 50)"
  check_prefix "$prefix"
  [[ -e $STATE/$prefix ]] && die "lab $prefix exists (lab.sh down $prefix)"
  mkdir -p "$STATE"
  local br="$prefix-br"
  printf 'owner=%s\nhosts=%s\nnet=%s\n' "${LAB_OWNER_PID:-$PPID}" "$n" "$NET" >"$STATE/$prefix"
  trap 'down "$prefix" >/dev/null 2>&1 || true' ERR
  ip link add "$br" type bridge
  ip link set "$br" up
  fwd_rule -C "$br" 2>/dev/null || fwd_rule -I "$br"
  local i ns
  for ((i = 1; i <= n; i++)); do
    ns="$prefix-$i"
    ip netns add "$ns"
    ip link add "$ns"r type veth peer name "$ns"h
    ip link set "$ns"r master "$br" up
    ip link set "$ns"h netns "$ns"
    ip -n "$ns" link set "$ns"h name eth0
    ip -n "$ns" addr add "$NET.$((10 + i))/24" dev eth0
    ip -n "$ns" link set eth0 up
    ip -n "$ns" link set lo up
    ip netns exec "$ns" sysctl -qw net.ipv4.ip_forward=1
  done
  trap - ERR
  for ((i = 1; i <= n; i++)); do echo "$prefix-$i $NET.$((10 + i))"; done
}

down() {
  local prefix=${1:-slab}
  check_prefix "$prefix"
  local br="$prefix-br" ns
  while fwd_rule -C "$br" 2>/dev/null; do fwd_rule -D "$br"; done
  for ns in $(ip netns list | awk '{print $1}' | grep -E "^$prefix-[0-9]+$" || true); do
    ip netns del "$ns" || true
  done
  for l in $(ip -o link show | awk -F': ' '{print $2}' | sed 's/@.*//' | grep -E "^$prefix-([0-9]+r|br)$" || true); do
    ip link del "$l" 2>/dev/null || true
  done
  rm -f "$STATE/$prefix"
}

gc() {
  local all=${1:-} f prefix owner
  [[ -d $STATE ]] || return 0
  for f in "$STATE"/*; do
    [[ -e $f ]] || continue
    prefix=$(basename "$f")
    owner=$(sed -n 's/^owner=//p' "$f")
    if [[ $all == --all ]] || [[ -z $owner ]] || ! kill -0 "$owner" 2>/dev/null; then
      echo "removing lab $prefix"
      down "$prefix"
    fi
  done
}

ls_labs() {
  [[ -d $STATE ]] || return 0
  for f in "$STATE"/*; do [[ -e $f ]] && echo "$(basename "$f") $(tr '\n' ' ' <"$f")"; done
  return 0
}

cmd=${1:-}
shift || true
case $cmd in
  up) up "$@" ;;
  down) down "$@" ;;
  gc) gc "$@" ;;
  ls) ls_labs ;;
  *) die "usage: lab.sh up N [prefix] | down [prefix] | gc [--all] | ls" ;;
esac
