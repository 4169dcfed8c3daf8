# Guest script of bench/insns: guest instructions per polled read in each of INSNS_MODES (untraced,
# `dpas-trace sleep-ratio`, the equivalent bpftrace script /lab/bench-sleep-ratio.bt, dpt-hook-floor's
# programs on sleep-ratio's hooks: empty-fentry, fentry-spin, ...), in a random order per round.
# Each window is fio reading a fixed number of 4 KiB blocks (1 job, hybrid polling) between two runs
# of dpt-mark: the host's plugin writes the instruction count (and its emulation CPU time) at each
# mark. Writes /results/insns-windows.tsv: "round mode reads iops" per window, in the order of the
# marks.
# INSNS_ROUNDS, INSNS_READS, INSNS_MODES and INSNS_PROFILE come from /lab/insns.env. Profiling (the
# plugin counts per code address) adds the kernel's text symbols (/results/kallsyms.txt) and each
# window's BPF programs and trampolines (/results/kallsyms-window-N.txt, N from 0 in mark order);
# INSNS_TLB_PAGES (bench/insns --tlb-pages) its data symbols too (/results/kallsyms-all.txt).
. /lab/insns.env
if [ "$INSNS_PROFILE" = 1 ]; then
	echo 1 > /proc/sys/net/core/bpf_jit_kallsyms || fail "cannot list JIT-compiled BPF programs in kallsyms"
	awk '$2 ~ /^[tTwW]$/' /proc/kallsyms > /results/kallsyms.txt
	[ "${INSNS_TLB_PAGES:-0}" != 1 ] || cat /proc/kallsyms > /results/kallsyms-all.txt
fi
windows=0
lab_configure /lab/scenarios/hybrid.conf
case " $INSNS_MODES " in *" bpftrace "*) lab_bpftrace_setup ;; esac
out=/results/insns-windows.tsv
: > $out
fio --name=warm-up --ioengine=pvsync2 --hipri --direct=1 --rw=randread --bs=4k --iodepth=1 --numjobs=1 \
	--time_based --runtime=3 --filename="/dev/$DEV" --eta=never > /dev/null || fail "fio warm-up failed"

# window ROUND MODE: marks, fio, marks; appends the window's reads and IOPS.
window() {
	[ "$INSNS_PROFILE" != 1 ] || grep -E ' (bpf_prog_|bpf_trampoline_|bpf_dispatcher_)' /proc/kallsyms > "/results/kallsyms-window-$windows.txt" || true
	windows=$((windows + 1))
	# fio runs the marks itself, once its job is set up and once its I/O is done: its start-up and
	# report are outside the window.
	fio --name="$2" --ioengine=pvsync2 --hipri --direct=1 --rw=randread --bs=4k --iodepth=1 --numjobs=1 \
		--number_ios="$INSNS_READS" --filename="/dev/$DEV" --eta=never --output-format=terse \
		--exec_prerun="$(command -v dpt-mark)" --exec_postrun="$(command -v dpt-mark)" > /tmp/insns-fio.txt ||
		fail "fio $2 failed"
	terse=$(grep "^3;" /tmp/insns-fio.txt) || fail "fio $2 printed no terse line: $(cat /tmp/insns-fio.txt)"
	reads=$(($(echo "$terse" | cut -d';' -f6) / 4))
	echo "$1	$2	$reads	$(echo "$terse" | cut -d';' -f8)" >> $out
	say "round $1 $2: $reads reads"
}

for round in $(seq 1 "$INSNS_ROUNDS"); do
	for mode in $(printf '%s\n' $INSNS_MODES | shuf); do
		case $mode in
		untraced) window "$round" untraced ;;
		empty-fentry | fentry-*)
			opts=$(lab_floor_options "$mode") || fail "unknown floor mode $mode"
			lab_floor_start /tmp/insns-floor.log $opts $LAB_SLEEP_RATIO_HOOKS
			window "$round" "$mode"
			lab_floor_stop
			;;
		dpas-trace)
			lab_trace_start "insns-$round" sleep-ratio --device "$DEV"
			window "$round" dpas-trace
			lab_trace_stop "insns-$round"
			;;
		bpftrace)
			lab_bpftrace_start "/results/insns-bpftrace-$round"
			window "$round" bpftrace
			lab_bpftrace_stop
			;;
		esac
	done
done
