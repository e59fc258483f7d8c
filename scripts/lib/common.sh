# Shared by the scripts: where things live and how missing tools are installed.
# Everything here is idempotent: a second run only checks.
set -euo pipefail

LAMINA_ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
export LAMINA_CACHE_DIR="${LAMINA_CACHE_DIR:-/var/cache/lamina}"
export PATH="/opt/swift/usr/bin:$PATH"

log() { printf '\033[1m==> %s\033[0m\n' "$*" >&2; }
die() { printf 'error: %s\n' "$*" >&2; exit 1; }

require_root() {
    [ "$(id -u)" = 0 ] || die "run this as root: sandboxes need namespaces, cgroups and mounts"
}

# System packages Lamina builds and runs with, from Debian.
# (python3-pip fetches the runtime interface client's wheels for the python3.11 layer; the venv
# holds awscli and boto3.)
RUN_APT_PACKAGES=(
    libseccomp-dev libcap-dev libsqlite3-dev pkg-config gcc libc6-dev
    debootstrap curl ca-certificates python3 python3-venv python3-pip
)
# ... and what the tests and benchmarks add: the sandboxes we compare with (crun, bubblewrap), load
# tools, busybox for test layers, chromium to render the HTML report.
APT_PACKAGES=(
    "${RUN_APT_PACKAGES[@]}"
    busybox-static crun bubblewrap hyperfine wrk
    chromium
)

ensure_apt_packages() {
    local missing=()
    for package in "$@"; do
        dpkg-query -W -f='${Status}' "$package" 2>/dev/null | grep -q "install ok installed" || missing+=("$package")
    done
    [ ${#missing[@]} -eq 0 ] && return 0
    log "installing Debian packages: ${missing[*]}"
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq
    apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
}

ensure_swift() {
    command -v swift >/dev/null || die "Swift is not installed at /opt/swift (see README: Requirements)"
}

# Python tools (awscli and boto3 for users and tests, pytest and pillow for tests) live in a
# virtualenv the scripts own.
LAMINA_VENV="$LAMINA_CACHE_DIR/venv"
PYTHON_PACKAGES=(boto3 awscli pytest pillow)

ensure_python_tools() {
    if [ ! -x "$LAMINA_VENV/bin/python" ]; then
        log "creating the test virtualenv in $LAMINA_VENV"
        mkdir -p "$LAMINA_CACHE_DIR"
        /usr/bin/python3 -m venv "$LAMINA_VENV"
    fi
    local stamp="$LAMINA_VENV/.lamina-packages"
    if [ "$(cat "$stamp" 2>/dev/null)" != "${PYTHON_PACKAGES[*]}" ]; then
        log "installing Python packages: ${PYTHON_PACKAGES[*]}"
        "$LAMINA_VENV/bin/pip" install -q --disable-pip-version-check "${PYTHON_PACKAGES[@]}"
        echo "${PYTHON_PACKAGES[*]}" > "$stamp"
    fi
}

# The lamina and lamina-sandbox binaries, built for release with the Swift runtime linked in
# (a dynamically linked Swift binary spends ~9 ms just starting).
build_release() {
    log "building lamina and lamina-sandbox (release)"
    local product
    for product in lamina lamina-sandbox; do
        (cd "$LAMINA_ROOT" && swift build -c release --static-swift-stdlib --product "$product" 2>&1 | grep -vE '^\[[0-9]+/[0-9]+\]|unhandled|CMakeLists|xcprivacy' || true)
        [ -x "$LAMINA_ROOT/.build/release/$product" ] || die "the build of $product failed"
    done
}

# The root filesystem layers (base, runtimes), cached where the scripts own them: a fresh state
# directory (every test run has one) reuses them instead of running debootstrap again.
export LAMINA_ROOTFS_DIR="${LAMINA_ROOTFS_DIR:-$LAMINA_CACHE_DIR/rootfs}"

# Builds (or confirms) every root filesystem layer with the given lamina binary.
build_rootfs() { # LAMINA_BINARY STATE_DIR
    log "root filesystem layers in $LAMINA_ROOTFS_DIR (built once, then cached)"
    "$1" rootfs build --rootfs-dir "$LAMINA_ROOTFS_DIR" --recipes "$LAMINA_ROOT/rootfs" --state-dir "$2"
    "$1" rootfs list --rootfs-dir "$LAMINA_ROOTFS_DIR"
}
