#!/usr/bin/env bash
# Installs shoal as a daemon on a Debian 12 host. Run once, as root, from the
# project checkout; running it again upgrades in place and changes nothing
# that is already right.
#
#   deploy/install.sh [--dry-run] [--skip-setup] [--prefix DIR] [--destdir DIR]
#
#   1. deploy/setup.sh: Debian packages (docker.io, ...), dockerd, npm ci, build
#   2. copies the built project to PREFIX (default /opt/shoal); a checkout that
#      already is PREFIX is used in place
#   3. /usr/local/bin/shoal -> PREFIX/dist/agent/cli/main.js
#   4. /etc/systemd/system/shoal-agent.service, /etc/default/shoal-agent (kept
#      if present), `systemctl daemon-reload`
#
#   --dry-run     print what would be done, change nothing (no root needed)
#   --skip-setup  do not run deploy/setup.sh (packages and build already done)
#   --prefix DIR  install the project to DIR instead of /opt/shoal
#   --destdir DIR stage every file under DIR (as a package build does); the
#                 unit still names PREFIX; systemctl is not called
#
# The agent is not started: `systemctl enable --now shoal-agent` does that.
set -euo pipefail
export PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin

SRC=$(cd "$(dirname "$0")/.." && pwd -P)
PREFIX=/opt/shoal
DESTDIR=
DRY_RUN=0
SKIP_SETUP=0
UNIT=shoal-agent.service
# what a running agent needs; tests, sources and benchmarks stay in the checkout
PAYLOAD=(package.json package-lock.json dist node_modules deploy docs README.md)

say() { echo "install: $*"; }
die() { echo "install: $*" >&2; exit 1; }
# runs a command, or only prints it with --dry-run
run() {
  if [ "$DRY_RUN" = 1 ]; then echo "+ $*"; else "$@"; fi
}

while [ $# -gt 0 ]; do
  case "$1" in
    --dry-run) DRY_RUN=1 ;;
    --skip-setup) SKIP_SETUP=1 ;;
    --prefix) [ $# -ge 2 ] || die "--prefix needs a directory"; PREFIX=$2; shift ;;
    --destdir) [ $# -ge 2 ] || die "--destdir needs a directory"; DESTDIR=${2%/}; shift ;;
    -h|--help) sed -n '2,21p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
    *) die "unknown argument: $1 (see --help)" ;;
  esac
  shift
done
case "$PREFIX" in /*) PREFIX=${PREFIX%/} ;; *) die "--prefix must be an absolute path: $PREFIX" ;; esac
[ -n "$PREFIX" ] || die "--prefix must not be /"
if [ "$DRY_RUN" = 0 ] && [ -z "$DESTDIR" ] && [ "$(id -u)" != 0 ]; then
  die "run me as root (or try --dry-run)"
fi
[ "$DRY_RUN" = 1 ] && say "dry run: nothing is changed"

TARGET=$DESTDIR$PREFIX
UNIT_DIR=$DESTDIR/etc/systemd/system
DEFAULTS=$DESTDIR/etc/default/shoal-agent
BIN=$DESTDIR/usr/local/bin/shoal
NODE=$(command -v node || true)

# 1. packages, dockerd, dependencies, build
if [ "$SKIP_SETUP" = 1 ]; then
  say "skipping deploy/setup.sh"
else
  run "$SRC/deploy/setup.sh"
fi
if [ -z "$NODE" ]; then
  [ "$DRY_RUN" = 1 ] || die "node is not installed: install Node.js 20 first"
  NODE=/usr/bin/node
fi
if [ "$DRY_RUN" = 0 ] && [ ! -f "$SRC/dist/agent/cli/main.js" ]; then
  die "$SRC/dist is not built: run deploy/setup.sh (or npm ci && npm run build) first"
fi

# 2. the project under PREFIX, replaced as a whole so no stale file survives
is_shoal() { grep -qs '"name": "shoal"' "$1/package.json"; }
if [ -d "$TARGET" ] && [ "$(cd "$TARGET" && pwd -P)" = "$SRC" ]; then
  say "using the checkout in place: $SRC"
else
  case "$SRC/" in "$TARGET"/*) die "the checkout $SRC lies inside $TARGET: choose another --prefix" ;; esac
  # never replace a directory that is not an earlier shoal install
  if [ -e "$TARGET" ] && ! is_shoal "$TARGET" && [ -n "$(ls -A "$TARGET" 2>/dev/null || echo x)" ]; then
    die "$TARGET exists and is not a shoal install: choose another --prefix"
  fi
  say "installing $SRC to $TARGET"
  present=()
  for f in "${PAYLOAD[@]}"; do [ -e "$SRC/$f" ] && present+=("$f"); done
  run rm -rf "$TARGET.new" "$TARGET.old"
  run mkdir -p "$TARGET.new"
  if [ "$DRY_RUN" = 1 ]; then
    echo "+ tar -C $SRC -c ${present[*]} | tar -C $TARGET.new -x"
  else
    tar -C "$SRC" -c "${present[@]}" | tar -C "$TARGET.new" -x
  fi
  if [ -e "$TARGET" ]; then run mv "$TARGET" "$TARGET.old"; fi
  run mv "$TARGET.new" "$TARGET"
  run rm -rf "$TARGET.old"
fi
run chmod 0755 "$TARGET/dist/agent/cli/main.js"

# 3. the shoal command
run mkdir -p "$(dirname "$BIN")"
run ln -sfn "$PREFIX/dist/agent/cli/main.js" "$BIN"

# 4. systemd unit, with this host's node and PREFIX
render_unit() {
  sed -e "s#/usr/bin/node #$NODE #" -e "s#/opt/shoal/#$PREFIX/#g" "$SRC/deploy/systemd/$UNIT"
}
if [ "$DRY_RUN" = 1 ]; then
  echo "+ render deploy/systemd/$UNIT (node $NODE, prefix $PREFIX) > $UNIT_DIR/$UNIT"
elif ! render_unit | cmp -s - "$UNIT_DIR/$UNIT"; then
  mkdir -p "$UNIT_DIR"
  render_unit > "$UNIT_DIR/$UNIT.tmp"
  chmod 0644 "$UNIT_DIR/$UNIT.tmp"
  mv "$UNIT_DIR/$UNIT.tmp" "$UNIT_DIR/$UNIT"
  say "wrote $UNIT_DIR/$UNIT"
else
  say "$UNIT_DIR/$UNIT is up to date"
fi
if [ -e "$DEFAULTS" ]; then
  say "keeping $DEFAULTS"
else
  run mkdir -p "$(dirname "$DEFAULTS")"
  run install -m 0644 "$SRC/deploy/systemd/shoal-agent.default" "$DEFAULTS"
fi

if [ -n "$DESTDIR" ]; then
  say "staged under $DESTDIR; systemd is left alone"
elif [ -d /run/systemd/system ]; then
  run systemctl daemon-reload
  if systemctl is-active --quiet shoal-agent; then
    say "shoal-agent is running the old version; containers survive a restart:"
    say "  systemctl restart shoal-agent"
  else
    say "next: set --advertise-addr in $DEFAULTS if this host has several addresses, then"
    say "  systemctl enable --now shoal-agent"
  fi
else
  say "systemd is not running on this machine, so the unit cannot be used here."
  say "Start the agent by hand instead (it keeps running containers across restarts):"
  say "  nohup $NODE $PREFIX/dist/agent/cli/main.js agent --state-dir /var/lib/shoal --api-socket /run/shoal/docker.sock >>/var/log/shoal-agent.log 2>&1 &"
fi
say "done. Use it with: export DOCKER_HOST=unix:///run/shoal/docker.sock"
