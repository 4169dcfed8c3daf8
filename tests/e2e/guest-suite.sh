# Guest script of the end-to-end tests (tests/e2e/run boots it with lab/dpas-lab run --guest-script).
# Each phase writes its files to /results; the host asserts on them. A failing phase is noted and
# the next one still runs, so one broken command does not hide the others' results.
# Every traced phase uses the same window: tracers attached -> counter on -> fio -> counter off ->
# tracers stopped, so dpas-trace and the independent kprobe counter see the same polled I/O.

# phase NAME: runs the function NAME in its own `sh -e` (set -e is ignored in a subshell tested with
# if/||), so its first failing command ends it; records ok/failed in /results/NAME.phase.
phase() {
	say "=== phase $1 ==="
	if E2E_DEFINE_ONLY=1 sh -e -c '. /lab/lab.sh; . /lab/run.env; lab_find_disks > /dev/null; . /lab/guest-script; "$0"' "$1"; then
		echo ok > "/results/$1.phase"
	else
		echo failed > "/results/$1.phase"
		say "phase $1 failed"
	fi
}

# Runs fio for DURATION with the counter around it; NAME.counter.env gets the counts.
counted_fio() {
	lab_counter_start
	lab_fio "$1" "$DURATION" "$JOBS"
	lab_counter_stop count > "/results/$1.counter.env"
	sed "s/^/[counter $1] /" "/results/$1.counter.env"
}

# The probe plan (JSON only: each dpas-trace start loads BTF, which takes ~20 s under TCG).
plan() {
	dpas-trace plan --json > /results/plan.json
}

# Hybrid mode: live sleep-ratio and record over the same window as the counter. The live one times
# sleeps off the CPU with the classic timer and context-switch tracepoints (--off-cpu-time --avoid
# tp_btf), the recording resolves them on the poller's path (the default here): two independent
# ways to tell a sleep; the host compares their counts, and each against the counter. A second
# recording on the raw tracepoints (--off-cpu-time) keeps each sleep's expiry and switch back in:
# the time from one to the other is what the scheduler's accounting leaves out of the first's.
hybrid() {
	lab_configure /lab/scenarios/hybrid.conf
	lab_dump_sysfs /results/hybrid.sysfs.txt
	lab_trace_start hybrid-live sleep-ratio --device "$DEV" --json --off-cpu-time --avoid tp_btf --verbose
	lab_trace_start hybrid-record record -o /results/hybrid.dpt --device "$DEV"
	lab_trace_start hybrid-offcpu record -o /results/hybrid-offcpu.dpt --device "$DEV" --off-cpu-time
	counted_fio hybrid
	lab_trace_stop hybrid-live
	lab_trace_stop hybrid-record
	lab_trace_stop hybrid-offcpu
}

# Hybrid mode, two polling jobs: tasks woken before their timer make the kernel's sleep loop
# re-arm the sleeper with the absolute deadline (HRTIMER_MODE_ABS); record what dpas-trace makes of it.
# A live sleep-ratio on kprobes (--avoid fentry) runs beside it: the poller's path read through
# pt_regs, its arms told by their caller's return address on the stack, on functions that also carry
# the recorder's trampolines and the counter's kprobes.
rearm() {
	lab_configure /lab/scenarios/hybrid.conf
	lab_trace_start rearm-record record -o /results/rearm.dpt --device "$DEV"
	lab_trace_start rearm-kprobe sleep-ratio --device "$DEV" --json --avoid fentry --verbose
	lab_counter_start
	lab_fio rearm "$DURATION" 2
	lab_counter_stop count > /results/rearm.counter.env
	sed "s/^/[counter rearm] /" /results/rearm.counter.env
	lab_trace_stop rearm-kprobe
	lab_trace_stop rearm-record
}

# Hybrid mode: bucket assignments of the same kind of reads.
buckets() {
	lab_configure /lab/scenarios/hybrid.conf
	lab_trace_start buckets-live buckets --device "$DEV" --json
	counted_fio buckets
	lab_trace_stop buckets-live
}

# Classic polling: no hybrid sleeps at all.
cp_mode() {
	lab_configure /lab/scenarios/cp.conf
	lab_dump_sysfs /results/cp.sysfs.txt
	lab_trace_start cp_mode-live sleep-ratio --device "$DEV" --json
	counted_fio cp
	lab_trace_stop cp_mode-live
}

[ -n "${E2E_DEFINE_ONLY:-}" ] && return 0
phase plan
phase hybrid
phase rearm
phase buckets
phase cp_mode
