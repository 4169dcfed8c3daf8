# Shared by the bench scripts (bash).
bench_root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)

# bench_usage: prints the calling script's header comment (after the #! line) as its help.
bench_usage() {
	awk 'NR > 1 && !/^#/ { exit } NR > 1 { sub(/^# ?/, ""); print }' "$0"
}

# bench_floor_modes: the benchmarks' floor modes (dpt-hook-floor's programs on sleep-ratio's four
# hooks), one per line, from the table the guest runs them by (LAB_FLOOR_MODES, lab/guest/lab.sh).
bench_floor_modes() {
	# shellcheck disable=SC1091,SC2016 # the guest's helpers, read in a subshell of their own
	bash -c '. "$1/lab/guest/lab.sh" && echo "$LAB_FLOOR_MODES"' - "$bench_root" | awk '{ print $1 }'
}

# bench_need_bpftrace: installs Debian's bpftrace on the host if missing (the guest runs the host's
# binary; --qemu-counts runs it on the host).
bench_need_bpftrace() {
	command -v bpftrace > /dev/null && return
	echo "bench: installing bpftrace" >&2
	apt-get update -q >&2
	DEBIAN_FRONTEND=noninteractive apt-get install -y -q bpftrace >&2
}
