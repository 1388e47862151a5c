#!/bin/bash
# Installs (or removes) ingressd as a systemd service. Idempotent: running it twice leaves the
# same result as running it once. Run as root from the repository root:
#
#   deploy/install.sh [--no-build]          build release, install binary, unit, config, user
#   deploy/install.sh --uninstall [--purge] stop and remove them (--purge: also /etc/ingressd,
#                                           /var/log/ingressd and the user)
#
# DESTDIR=/some/dir installs into a staging tree (packaging, tests): no user is created and
# systemctl is not called.
set -euo pipefail

PREFIX=${PREFIX:-/usr/local}
DESTDIR=${DESTDIR:-}
BIN="$DESTDIR$PREFIX/bin/ingressd"
UNIT="$DESTDIR/etc/systemd/system/ingressd.service"
LOGROTATE="$DESTDIR/etc/logrotate.d/ingressd"
CONF="$DESTDIR/etc/ingressd"
DOC="$DESTDIR$PREFIX/share/doc/ingressd"
HERE=$(cd "$(dirname "$0")/.." && pwd)

build=1 uninstall=0 purge=0
for a in "$@"; do
  case "$a" in
    --no-build) build=0 ;;
    --uninstall) uninstall=1 ;;
    --purge) purge=1 ;;
    *) echo "usage: $0 [--no-build] | --uninstall [--purge]" >&2; exit 2 ;;
  esac
done

live_systemd() { [ -z "$DESTDIR" ] && [ -d /run/systemd/system ]; }

if [ "$uninstall" = 1 ]; then
  if live_systemd; then
    systemctl disable --now ingressd.service 2>/dev/null || true
  fi
  rm -f "$BIN" "$UNIT" "$LOGROTATE"
  rm -rf "$DOC"
  live_systemd && systemctl daemon-reload || true
  if [ "$purge" = 1 ]; then
    rm -rf "$CONF" "$DESTDIR/var/log/ingressd"
    if [ -z "$DESTDIR" ] && id ingressd >/dev/null 2>&1; then userdel ingressd; fi
  fi
  echo "ingressd uninstalled"
  exit 0
fi

if [ "$build" = 1 ]; then
  (cd "$HERE" && swift build -c release)
fi
src="${INGRESSD_BINARY:-$HERE/.build/release/ingressd}"   # override: tests
[ -x "$src" ] || { echo "no release binary at $src (run without --no-build)" >&2; exit 1; }

install -d "$(dirname "$BIN")" "$(dirname "$UNIT")" "$(dirname "$LOGROTATE")" "$DOC"
install -m 0755 "$src" "$BIN"
sed "s#/usr/local/bin/ingressd#$PREFIX/bin/ingressd#g" "$HERE/deploy/ingressd.service" > "$UNIT.tmp"
chmod 0644 "$UNIT.tmp" && mv "$UNIT.tmp" "$UNIT"
install -m 0644 "$HERE/deploy/ingressd.logrotate" "$LOGROTATE"
install -m 0644 "$HERE/README.md" "$DOC/README.md"

# Configuration: the examples, only when the directory has no manifests yet (never overwrite).
install -d -m 0755 "$CONF"
if ! ls "$CONF"/*.yaml "$CONF"/*.yml >/dev/null 2>&1; then
  install -m 0644 "$HERE/examples/workshop/frontend-ingress.yaml" "$HERE/examples/workshop/addons-ingress.yaml" \
    "$HERE/examples/services.yaml" "$CONF/"
  echo "installed the workshop example into $CONF (edit or replace it)"
fi

if [ -z "$DESTDIR" ]; then
  if ! id ingressd >/dev/null 2>&1; then
    useradd --system --no-create-home --home-dir /nonexistent --shell /usr/sbin/nologin ingressd
  fi
  "$BIN" check -c "$CONF" || echo "warning: $CONF does not pass 'ingressd check'; the service will not start" >&2
fi
if live_systemd; then
  systemctl daemon-reload
  echo "installed; start with: systemctl enable --now ingressd"
else
  echo "installed into ${DESTDIR:-/} (systemd is not running here: enable the unit on the target)"
fi
