# Guest script of bench/lab: tracing overhead in one boot. Each round runs the modes in a random
# order -- untraced, `dpas-trace sleep-ratio`, the equivalent bpftrace script
# (/lab/bench-sleep-ratio.bt), `dpas-trace record`, and on request `dpas-trace sleep-ratio
# --off-cpu-time` (the timer and context-switch tracepoints too), the same with --avoid tp_btf
# (classic tracepoints), sleep-ratio with its process frozen during fio (the kernel side alone), and
# minimal fentry programs on sleep-ratio's hooks (dpt-hook-floor: empty, the floor, or doing a
# fixed amount of one kind of work) -- and within each mode fio with
# 1 and 2 jobs in a random order, so slow drift of the emulator (TCG) spreads over all modes alike. A tracer is
# attached once per mode and round and covers both fio runs; its start-up is outside the fio window.
# Writes /results/bench/ROUND-MODE-JOBSj.fio.json, the tracers' output, and bench.tsv
# for the host: "round mode jobs iops" per fio run, "round record-events - events lost seconds"
# per record window.
# BENCH_ROUNDS and BENCH_MODES come from /lab/bench.env (bench/lab passes it with --guest-file).
. /lab/bench.env
lab_configure /lab/scenarios/hybrid.conf
lab_dump_sysfs /results/sysfs.txt
mkdir -p /results/bench /tmp/bench
case " $BENCH_MODES " in *" bpftrace "*) lab_bpftrace_setup ;; esac
B=/results/bench
: > $B/bench.tsv

# shuffled WORDS...: the words in a random order, one per line.
shuffled() { for w in "$@"; do echo "$w"; done | shuf; }

# fio_pair ROUND MODE: fio with 1 and 2 jobs (random order); appends their IOPS to bench.tsv.
fio_pair() {
	for j in $(shuffled 1 2); do
		lab_fio_bench "$1-$2-${j}j" "$j"
		iops=$(tr -d ' \n' < "$B/$1-$2-${j}j.fio.json" | grep -o '"read":{"io_bytes":[0-9]*,"io_kbytes":[0-9]*,"bw_bytes":[0-9]*,"bw":[0-9]*,"iops":[0-9.]*' | sed 's/.*"iops"://')
		echo "$1	$2	$j	$iops" >> $B/bench.tsv
		say "round $1 $2 ${j} job(s): $iops IOPS"
	done
}

lab_fio_bench() {
	fio --name="$1" --ioengine=pvsync2 --hipri --direct=1 --rw=randread --bs=4k --iodepth=1 \
		--numjobs="$2" --time_based --runtime="$DURATION" --filename="/dev/$DEV" --group_reporting \
		--eta=never --output-format=json --output="$B/$1.fio.json" || fail "fio $1 failed"
}

# floor_pair ROUND MODE [OPTIONS]: fio_pair under dpt-hook-floor's minimal programs on sleep-ratio's
# default hooks on this kernel.
floor_pair() {
	floor_round=$1 floor_mode=$2
	shift 2
	lab_floor_start "$B/$floor_round-$floor_mode.out" "$@" $LAB_SLEEP_RATIO_HOOKS ||
		return 1
	fio_pair "$floor_round" "$floor_mode"
	lab_floor_stop || say "$floor_mode: the run's result stands"
}

# One unmeasured run first: the first fio of a boot pays for TCG translating the I/O path.
say "bench: warm-up"
lab_fio_bench warmup 1

for round in $(seq 1 "$BENCH_ROUNDS"); do
	# shellcheck disable=SC2086 # BENCH_MODES is a word list
	for mode in $(shuffled $BENCH_MODES); do
		say "bench: round $round, $mode"
		case $mode in
		untraced) fio_pair "$round" untraced ;;
		dpas-trace)
			lab_trace_start "bench/$round-dpas-trace" sleep-ratio --device "$DEV"
			fio_pair "$round" dpas-trace
			lab_trace_stop "bench/$round-dpas-trace"
			;;
		dpas-trace-stopped)
			# The kernel side alone: the programs stay attached while the tracer's process is frozen.
			lab_trace_start "bench/$round-dpas-trace-stopped" sleep-ratio --device "$DEV"
			kill -STOP "$TRACE_PID"
			fio_pair "$round" dpas-trace-stopped
			kill -CONT "$TRACE_PID"
			lab_trace_stop "bench/$round-dpas-trace-stopped"
			;;
		dpas-trace-offcpu)
			lab_trace_start "bench/$round-dpas-trace-offcpu" sleep-ratio --device "$DEV" --off-cpu-time
			fio_pair "$round" dpas-trace-offcpu
			lab_trace_stop "bench/$round-dpas-trace-offcpu"
			;;
		dpas-trace-classic)
			lab_trace_start "bench/$round-dpas-trace-classic" sleep-ratio --device "$DEV" --off-cpu-time --avoid tp_btf
			fio_pair "$round" dpas-trace-classic
			lab_trace_stop "bench/$round-dpas-trace-classic"
			;;
		bpftrace)
			lab_bpftrace_start "$B/$round-bpftrace"
			fio_pair "$round" bpftrace
			lab_bpftrace_stop
			;;
		empty-fentry | fentry-*) floor_pair "$round" "$mode" $(lab_floor_options "$mode") ;;
		record)
			lab_trace_start "bench/$round-record" record -o /tmp/bench.dpt --device "$DEV"
			start=$(cut -d' ' -f1 /proc/uptime)
			fio_pair "$round" record
			end=$(cut -d' ' -f1 /proc/uptime)
			lab_trace_stop "bench/$round-record"
			# "wrote N events to ... lost events: L"; the dump itself stays in guest memory only.
			line=$(grep 'dpas-trace: wrote' "$B/$round-record.err" | tail -n 1)
			events=$(echo "$line" | sed -n 's/.*wrote \([0-9]*\) events.*/\1/p')
			lost=$(echo "$line" | sed -n 's/.*lost events: \([0-9]*\).*/\1/p')
			echo "$round	record-events	-	${events:-?}	${lost:-?}	$(awk -v a="$start" -v b="$end" 'BEGIN { printf "%.1f", b - a }')" >> $B/bench.tsv
			say "round $round record: ${events:-?} events, ${lost:-?} lost"
			rm -f /tmp/bench.dpt
			;;
		esac
	done
done
