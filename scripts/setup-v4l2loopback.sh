#!/usr/bin/env bash
# Set up the "BgCam" virtual camera: install v4l2loopback, load it, and make that survive reboots.
#
#   sudo scripts/setup-v4l2loopback.sh          # Debian/Ubuntu, Fedora, Arch (and derivatives)
#   sudo scripts/setup-v4l2loopback.sh --check  # only say what is missing
#
# Module options: devices=1 video_nr=10 card_label=BgCam exclusive_caps=1
#   card_label=BgCam    the name Zoom/Teams/Meet/OBS show (bgcam run finds the device by it)
#   exclusive_caps=1    advertise capture only once BgCam writes: Chrome lists only such devices
# Persistence: /etc/modules-load.d/bgcam.conf (load at boot) and /etc/modprobe.d/bgcam.conf
# (the options). Running it again changes nothing that is already right (idempotent).
set -euo pipefail

MODULE=v4l2loopback
OPTIONS="devices=1 video_nr=10 card_label=BgCam exclusive_caps=1"
LOAD_CONF=/etc/modules-load.d/bgcam.conf
OPTS_CONF=/etc/modprobe.d/bgcam.conf

say() { printf '%s\n' "bgcam-setup: $*"; }
die() { printf '%s\n' "bgcam-setup: error: $*" >&2; exit 1; }

module_available() { modinfo "$MODULE" >/dev/null 2>&1; }
bgcam_loaded() {
    local f
    for f in /sys/class/video4linux/video*/name; do
        [[ -e "$f" ]] || continue
        [[ "$(cat "$f")" == "BgCam" ]] && return 0
    done
    return 1
}

if [[ "${1:-}" == "--check" ]]; then
    if module_available; then say "module $MODULE: installed"; else say "module $MODULE: NOT installed"; fi
    if bgcam_loaded; then say "device named BgCam: present"; else say "device named BgCam: NOT present"; fi
    exit 0
fi

[[ $EUID -eq 0 ]] || die "run as root: sudo $0"

install_module() {
    if module_available; then
        say "$MODULE is already installed"
        return
    fi
    local id="" like=""
    if [[ -r /etc/os-release ]]; then
        # shellcheck disable=SC1091
        . /etc/os-release
        id="${ID:-}"
        like="${ID_LIKE:-}"
    fi
    case " $id $like " in
        *" debian "* | *" ubuntu "*)
            apt-get update
            apt-get install -y v4l2loopback-dkms v4l2loopback-utils "linux-headers-$(uname -r)" ||
                apt-get install -y v4l2loopback-dkms v4l2loopback-utils
            ;;
        *" fedora "* | *" rhel "*)
            # Fedora ships v4l2loopback in RPM Fusion (free).
            if ! rpm -q rpmfusion-free-release >/dev/null 2>&1; then
                dnf install -y "https://mirrors.rpmfusion.org/free/fedora/rpmfusion-free-release-$(rpm -E %fedora).noarch.rpm"
            fi
            dnf install -y v4l2loopback kmod-v4l2loopback || dnf install -y akmod-v4l2loopback
            ;;
        *" arch "*)
            pacman -S --needed --noconfirm v4l2loopback-dkms v4l2loopback-utils linux-headers
            ;;
        *)
            die "unknown distribution '$id': install the v4l2loopback kernel module yourself, then run this again"
            ;;
    esac
    module_available || die "$MODULE still cannot be found (modinfo $MODULE); reboot if the kernel was updated"
}

persist() {
    local want_load="$MODULE" want_opts="options $MODULE $OPTIONS"
    if [[ ! -f "$LOAD_CONF" ]] || [[ "$(cat "$LOAD_CONF")" != "$want_load" ]]; then
        printf '%s\n' "$want_load" >"$LOAD_CONF"
        say "wrote $LOAD_CONF"
    fi
    if [[ ! -f "$OPTS_CONF" ]] || [[ "$(cat "$OPTS_CONF")" != "$want_opts" ]]; then
        printf '%s\n' "$want_opts" >"$OPTS_CONF"
        say "wrote $OPTS_CONF"
    fi
}

load() {
    if bgcam_loaded; then
        say "the BgCam virtual camera is already there"
        return
    fi
    if lsmod | grep -q "^${MODULE} "; then
        # Loaded with other options (e.g. by another tool): reload with ours if nobody uses it.
        say "$MODULE is loaded without a BgCam device; reloading it with: $OPTIONS"
        modprobe -r "$MODULE" || die "$MODULE is in use; close programs using /dev/video* (fuser -v /dev/video*) and run this again"
    fi
    # shellcheck disable=SC2086 # OPTIONS is a list of words on purpose
    modprobe "$MODULE" $OPTIONS
    bgcam_loaded || die "$MODULE loaded but no device named BgCam appeared (dmesg | tail)"
}

install_module
persist
load
say "done: the virtual camera 'BgCam' is $(grep -l '^BgCam$' /sys/class/video4linux/video*/name | sed 's|/sys/class/video4linux/|/dev/|; s|/name||')"
say "start BgCam with: bgcam run"
