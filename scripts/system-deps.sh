#!/usr/bin/env bash
# Installs the system programs the tests use (dbus-daemon for the emulated BLE stack, tmux for
# the terminal test, headless chromium for the HTML report test) when they are missing. Needs root
# (or sudo) the first time only.
set -eu
need=()
command -v dbus-daemon >/dev/null 2>&1 || need+=(dbus-daemon)
command -v tmux >/dev/null 2>&1 || need+=(tmux)
# headless Chromium renders the HTML report in its test (Debian package; no network needed)
command -v chromium >/dev/null 2>&1 || [ -x /usr/bin/chromium ] || need+=(chromium)
# OpenSCAD renders the enclosure (hardware/enclosure.scad) to STL in its test
command -v openscad >/dev/null 2>&1 || need+=(openscad)
# the clinic tests' broker and database (tests/clinic, docs/clinic.md): Debian packages, started
# by scripts/clinic_services.py as unprivileged users on loopback
command -v mosquitto >/dev/null 2>&1 || [ -x /usr/sbin/mosquitto ] || need+=(mosquitto)
ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1 || need+=(postgresql)
command -v openssl >/dev/null 2>&1 || need+=(openssl)
[ ${#need[@]} -eq 0 ] && exit 0
SUDO=""
[ "$(id -u)" -eq 0 ] || SUDO="sudo"
echo "installing system packages: ${need[*]}"
$SUDO apt-get update -qq
DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null
