# Shared helpers for lab/dpas-lab and tests/e2e (sourced, not run).
# Paths: LAB_DIR is lab/, REPO_DIR the package root; caches live in lab/cache/, results in lab/out/.
LAB_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
REPO_DIR=$(cd "$LAB_DIR/.." && pwd)
CACHE_DIR=${DPAS_LAB_CACHE:-$LAB_DIR/cache}
OUT_DIR=${DPAS_LAB_OUT:-$LAB_DIR/out}

log() { printf 'dpas-lab: %s\n' "$*" >&2; }
die() { printf 'dpas-lab: error: %s\n' "$*" >&2; exit 1; }

need_root() {
	[[ $(id -u) -eq 0 ]] || die "$1 needs root (apt-get, mounts): run it with sudo"
}

# need_cmd CMD WHAT-TO-DO: fails with a hint when a host command is missing.
need_cmd() {
	command -v "$1" >/dev/null 2>&1 || die "'$1' is not installed: $2"
}
