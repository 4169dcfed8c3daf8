# Guest script of bench/placement: where on the hybrid poller's path a tracer's work costs IOPS.
# dpt-hook-floor puts a register-only loop (no memory, no helper) of about the same time per read
# on one of sleep-ratio's hooks at a time -- or spread over all four, or an empty program on all
# four -- and fio runs 1 job of polled 4 KiB random reads under it, the placements in a random order
# per round with untraced runs among them. The programs' run time per read comes from a first pass
# (round 0) with the kernel's statistics on, which the rounds leave off: the statistics' own clock
# reads cost IOPS too.
# Writes /results/placement.tsv: "round placement iops bpf_ns_per_read" per fio run (0 ns: not
# counted).
# PLACEMENT_ROUNDS and PLACEMENT_DURATION come from /lab/placement.env.
. /lab/placement.env
lab_configure /lab/scenarios/hybrid.conf
poll=blk_mq_poll
grep -q ' blk_poll$' /proc/kallsyms && poll=blk_poll
out=/results/placement.tsv
: > $out

# fio_once NAME: one fio run; prints "KiB-read IOPS".
fio_once() {
	fio --name="$1" --ioengine=pvsync2 --hipri --direct=1 --rw=randread --bs=4k --iodepth=1 --numjobs=1 \
		--time_based --runtime="$PLACEMENT_DURATION" --filename="/dev/$DEV" --eta=never --output-format=terse \
		> /tmp/placement-fio.txt || fail "fio $1 failed"
	cut -d';' -f6,8 /tmp/placement-fio.txt | tr ';' ' '
}

# measure ROUND PLACEMENT [SPIN FUNCTION...]: fio under loops of SPIN iterations on FUNCTIONs;
# round 0 counts the programs' run time.
measure() {
	round=$1 placement=$2
	shift 2
	pid= stats=
	[ "$round" = 0 ] && stats=--stats
	if [ $# -gt 0 ]; then
		lab_floor_start /tmp/placement-floor.log $stats --spin "$@"
		pid=$FLOOR_PID
	fi
	set -- $(fio_once "$round-$placement")
	kib=$1 iops=$2 ns=0
	if [ -n "$pid" ]; then
		lab_floor_stop
		# the programs' run time over the run, per 4 KiB read
		[ -z "$stats" ] || ns=$(sed -n 's/.* runs, \([0-9]*\) ns, mean.*/\1/p' /tmp/placement-floor.log |
			awk -v reads=$((kib / 4)) '{ s += $1 } END { printf "%.0f", s / reads }')
	fi
	echo "$round	$placement	$iops	$ns" >> $out
	say "round $round $placement: $iops IOPS, ${ns} ns of BPF time per read"
}

say "placement: warm-up"
fio_once warmup > /dev/null
# About 6 us per read for each placement at TCG's ~1.15 ns per loop iteration: the arm and
# io_schedule run once per read, blk_poll twice, hrtimer_cancel ~1.9 times (all timers' cancels).
for round in $(seq 0 "$PLACEMENT_ROUNDS"); do
	for p in $(printf '%s\n' untraced empty all arm io_schedule cancel poll | shuf); do
		case $p in
		untraced) measure "$round" untraced ;;
		empty) measure "$round" empty 0 "$poll" hrtimer_sleeper_start_expires io_schedule hrtimer_cancel ;;
		all) measure "$round" all 1000 "$poll" hrtimer_sleeper_start_expires io_schedule hrtimer_cancel ;;
		arm) measure "$round" arm 5700 hrtimer_sleeper_start_expires ;;
		io_schedule) measure "$round" io_schedule 5700 io_schedule ;;
		cancel) measure "$round" cancel 3100 hrtimer_cancel ;;
		poll) measure "$round" poll 2850 "$poll" ;;
		esac
	done
done
