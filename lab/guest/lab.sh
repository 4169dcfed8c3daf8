# Guest-side helpers (busybox sh), sourced by /init and used by guest scripts.
# Results go to /results; the host reads them back from the results disk.
# Variables from /lab/run.env: SCENARIO DURATION JOBS POLL_DELAY TRACE (1: run dpas-trace).

say() { echo "[lab $(cut -d" " -f1 /proc/uptime)s] $*"; }
fail() { echo "[lab] error: $*"; return 1; }

# Loads the nvme driver with poll queues: from the modules shipped in /lib/modules (dependency
# order listed in /lab/modules.order), or nothing to do when nvme is built into the kernel.
lab_load_nvme() {
	if [ -d /sys/module/nvme ]; then
		say "nvme is built in; poll_queues=$(cat /sys/module/nvme/parameters/poll_queues 2>/dev/null)"
	else
		[ -s /lab/modules.order ] || fail "nvme is not built into $(uname -r) and no modules were packed: pass --modules DIR"
		while read -r mod; do
			case $mod in
			*/nvme.ko) insmod "/$mod" poll_queues=2 ;;
			*) insmod "/$mod" ;;
			esac || fail "insmod $mod failed"
		done < /lab/modules.order
	fi
	# nvme probes asynchronously: wait for both namespaces.
	i=0
	while [ "$(ls /sys/block | grep -c '^nvme')" -lt 2 ]; do
		i=$((i + 1))
		[ $i -lt 100 ] || fail "the NVMe namespaces did not appear within 20 s"
		sleep 0.2
	done
}

# Prints the block device name (e.g. nvme0n1) of the NVMe controller with serial $1.
lab_disk_by_serial() {
	for c in /sys/class/nvme/nvme*; do
		[ "$(cat "$c/serial" 2>/dev/null | tr -d ' ')" = "$1" ] || continue
		for ns in "$c"/nvme*n*; do
			[ -e "$ns" ] && basename "$ns" && return 0
		done
	done
	return 1
}

# Sets DEV (the disk under test) by serial: probe order decides the names, not the command line.
lab_find_disks() {
	DEV=$(lab_disk_by_serial dpas) || fail "no NVMe disk with serial 'dpas'"
	Q=/sys/block/$DEV/queue
	export DEV Q
	say "disk under test: /dev/$DEV ($(cat "/sys/block/$DEV/size") sectors), kernel $(uname -r)"
}

# lab_configure SCENARIO_FILE: applies a scenario's queue settings (see lab/scenarios/*.conf).
lab_configure() {
	HIPRI=1 POLL_DELAY_DEFAULT=-1 DPAS_KNOBS=
	. "$1"
	delay=${POLL_DELAY:-$POLL_DELAY_DEFAULT}
	echo "$delay" > "$Q/io_poll_delay" || fail "cannot write io_poll_delay=$delay"
	for kv in $DPAS_KNOBS; do
		knob=${kv%%=*}
		[ -e "$Q/$knob" ] || fail "$Q/$knob does not exist: scenario $(basename "$1" .conf) needs a DPAS kernel (--kernel)"
		echo "${kv#*=}" > "$Q/$knob" || fail "cannot write $knob=${kv#*=}"
	done
	[ "$(cat "$Q/io_poll_delay")" = "$delay" ] || fail "io_poll_delay reads $(cat "$Q/io_poll_delay"), expected $delay (this kernel has no hybrid polling?)"
	FIO_HIPRI=
	[ "$HIPRI" = 1 ] && FIO_HIPRI=--hipri
	export FIO_HIPRI
}

# lab_dump_sysfs FILE: records the settings that decide which completion path runs.
lab_dump_sysfs() {
	{
		echo "kernel=$(uname -r)"
		echo "poll_queues=$(cat /sys/module/nvme/parameters/poll_queues 2>&1)"
		for f in io_poll io_poll_delay wbt_lat_usec scheduler nomerges; do
			echo "$f=$(cat "$Q/$f" 2>&1)"
		done
		for f in "$Q"/pas_* "$Q"/ehp_enabled "$Q"/switch_*; do
			[ -f "$f" ] || continue
			case $f in */switch_stat) continue ;; esac
			echo "$(basename "$f")=$(cat "$f" 2>&1)"
		done
	} > "$1"
	sed 's/^/[sysfs] /' "$1"
}

# The independent counter: tracefs kprobe events on hrtimer_sleeper_start_expires and io_schedule,
# filtered to calls made from the polling function (the hybrid sleep is inlined into it), counted in
# a private trace instance. It shares nothing with dpas-trace.
COUNTER_INSTANCE=/sys/kernel/tracing/instances/dpaslab
# lab_poll_range: sets poll_fn (blk_poll, or blk_mq_poll from 5.18), where these kernels inline the
# hybrid sleep loop, lo / hi, the hex bounds of its code (its address and the next text symbol's:
# the kernel's own symbols are listed in address order; fixed-width hex compares correctly as
# strings; computed once per boot) and poll_size.
lab_poll_range() {
	poll_fn=blk_poll
	grep -q ' [tT] blk_mq_poll$' /proc/kallsyms && poll_fn=blk_mq_poll
	if [ ! -s /tmp/poll_range ]; then
		awk -v f="$poll_fn" 'hit && $2 ~ /^[tT]$/ && ($1 "") > start { print start, $1; exit }
			$3 == f { start = $1 ""; hit = 1 }' /proc/kallsyms > /tmp/poll_range
	fi
	range=$(cat /tmp/poll_range)
	[ -n "$range" ] || { fail "$poll_fn not found in /proc/kallsyms"; return 1; }
	set -- $range
	lo=0x$1 hi=0x$2
	# Its size, from the low 32 bits (the shell's arithmetic is signed: kernel addresses overflow it;
	# kernel text lies within one 4 GB-aligned block, checked).
	[ "${1%????????}" = "${2%????????}" ] || { fail "$poll_fn spans a 4 GB boundary ($range)"; return 1; }
	poll_size=$((0x${2#????????} - 0x${1#????????}))
}

lab_counter_start() {
	T=/sys/kernel/tracing
	lab_poll_range || return 1
	# The caller's return address lies inside poll_fn.
	# Made once per boot, reused by later windows. $stack0 is the return address at function entry
	# on x86-64.
	if [ ! -d $T/events/dpaslab ]; then
		# mode: the second argument (%si on x86-64), enum hrtimer_mode; 0 (ABS) is the sleep
		# loop re-arming towards the same deadline after a wakeup that was not the timer.
		echo 'p:dpaslab/sleeper hrtimer_sleeper_start_expires caller=$stack0:x64 mode=%si:u32' >> $T/kprobe_events ||
			fail "kprobe_events refused hrtimer_sleeper_start_expires (CONFIG_KPROBE_EVENTS off?)"
		echo 'p:dpaslab/iosched io_schedule caller=$stack0:x64' >> $T/kprobe_events ||
			fail "kprobe_events refused io_schedule"
	fi
	[ -d $COUNTER_INSTANCE ] || mkdir $COUNTER_INSTANCE
	echo 16384 > $COUNTER_INSTANCE/buffer_size_kb
	for ev in sleeper iosched; do
		echo "caller >= $lo && caller < $hi" > $COUNTER_INSTANCE/events/dpaslab/$ev/filter
	done
	echo > $COUNTER_INSTANCE/trace
	echo 1 > $COUNTER_INSTANCE/events/dpaslab/enable
	COUNTER_FN=$poll_fn
}

# lab_counter_stop PREFIX: stops counting and prints PREFIX_sleeper=N PREFIX_rearm=N (the sleeper
# arms with mode ABS) PREFIX_iosched=N PREFIX_lost=N.
lab_counter_stop() {
	echo 0 > $COUNTER_INSTANCE/events/dpaslab/enable
	# grep -c exits 1 when it counts 0.
	sl=$(grep -c ' sleeper: ' $COUNTER_INSTANCE/trace || true)
	io=$(grep -c ' iosched: ' $COUNTER_INSTANCE/trace || true)
	rearm=$(awk '/ sleeper: / && / mode=0( |$)/ { n++ } END { print n + 0 }' $COUNTER_INSTANCE/trace)
	lost=0
	for s in $COUNTER_INSTANCE/per_cpu/cpu*/stats; do
		n=$(awk '/^overrun:/ { o = $2 } /^dropped events:/ { d = $3 } END { print o + d }' "$s")
		lost=$((lost + n))
	done
	echo "$1_fn=$COUNTER_FN"
	echo "$1_sleeper=$sl"
	echo "$1_rearm=$rearm"
	echo "$1_iosched=$io"
	echo "$1_lost=$lost"
}

# lab_fio NAME SECONDS JOBS: polled (or, without FIO_HIPRI, interrupt) 4 KiB random reads on
# /dev/$DEV; JSON to /results/NAME.fio.json.
lab_fio() {
	fio --name="$1" --ioengine=pvsync2 $FIO_HIPRI --direct=1 --rw=randread --bs=4k --iodepth=1 \
		--numjobs="$3" --time_based --runtime="$2" --filename="/dev/$DEV" --group_reporting \
		--eta=never --output-format=json --output="/results/$1.fio.json" || fail "fio $1 failed"
	# One line for the console; the host parses the JSON.
	tr -d ' \n' < "/results/$1.fio.json" | grep -o '"read":{"io_bytes":[0-9]*,"io_kbytes":[0-9]*,"bw_bytes":[0-9]*,"bw":[0-9]*,"iops":[0-9.]*' |
		sed 's/.*"iops":/[fio] IOPS /'
}

# lab_trace_start NAME ARGS...: runs dpas-trace ARGS in the background (stdout to /results/NAME.out,
# stderr to /results/NAME.err) and waits until it has attached its probes.
lab_trace_start() {
	name=$1
	shift
	dpas-trace "$@" > "/results/$name.out" 2> "/results/$name.err" &
	TRACE_PID=$!
	echo "$TRACE_PID" > "/tmp/$name.pid"
	say "dpas-trace $* (pid $TRACE_PID)"
	# Attached = its BPF links / perf events stopped appearing 2 s ago; loading BTF under TCG takes
	# 15-30 s.
	prev=-1 stable=0 i=0
	while [ $stable -lt 8 ]; do
		if ! kill -0 "$TRACE_PID" 2>/dev/null; then
			wait "$TRACE_PID" && rc=0 || rc=$?
			cat "/results/$name.out" "/results/$name.err"
			echo "$rc" > "/results/$name.rc"
			fail "dpas-trace $* exited with status $rc before the workload started"
			return 1
		fi
		n=$(ls -l "/proc/$TRACE_PID/fd" 2>/dev/null | grep -c -e 'bpf-link' -e 'bpf_link' -e 'perf_event' || true)
		if [ "$n" -gt 0 ] && [ "$n" = "$prev" ]; then stable=$((stable + 1)); else stable=0; fi
		prev=$n
		i=$((i + 1))
		[ $i -lt 720 ] || fail "dpas-trace did not finish attaching its probes within 180 s"
		sleep 0.25
	done
	say "dpas-trace attached ($n links)"
}

# lab_wait_for_line PID FILE PATTERN SECONDS WHAT: waits until FILE has a line matching PATTERN
# (a basic regular expression) while process PID (WHAT, in messages) lives, at most SECONDS.
lab_wait_for_line() {
	i=0
	until grep -q "$3" "$2"; do
		kill -0 "$1" 2>/dev/null || { fail "$5 exited before it was ready: $(tail -n 5 "$2")"; return 1; }
		i=$((i + 1))
		[ $i -lt $(($4 * 4)) ] || { fail "$5 was not ready within $4 s"; return 1; }
		sleep 0.25
	done
}

# The functions `dpas-trace sleep-ratio` hooks by default on 5.10 (the poller's path): the floor modes'
# empty programs go on the same ones.
LAB_SLEEP_RATIO_HOOKS="hrtimer_sleeper_start_expires io_schedule hrtimer_cancel"

# lab_floor_start LOG [OPTIONS] FUNCTION...: dpt-hook-floor's minimal fentry programs (bench) on
# FUNCTIONs, in the background (FLOOR_PID), once they are attached; its output goes to LOG.
lab_floor_start() {
	FLOOR_LOG=$1
	shift
	dpt-hook-floor "$@" > "$FLOOR_LOG" 2>&1 &
	FLOOR_PID=$!
	lab_wait_for_line "$FLOOR_PID" "$FLOOR_LOG" attached 100 dpt-hook-floor
}

# The benchmarks' floor modes, one per line: the mode, then dpt-hook-floor's options for it (empty
# programs, or each doing one kind of sleep-ratio's work per run). The host's bench scripts read
# this table too (bench/lib.sh).
LAB_FLOOR_MODES='empty-fentry
fentry-helpers --helper-calls 4
fentry-pages --touch-pages 4
fentry-spin --spin 1000
fentry-lru --thread-lookups 1
fentry-hash --thread-lookups 1 --thread-map hash
fentry-array --thread-lookups 1 --thread-map array
fentry-percpu --percpu-counts 2'

# lab_floor_options MODE: dpt-hook-floor's options for floor mode MODE; fails for other modes.
lab_floor_options() {
	echo "$LAB_FLOOR_MODES" | awk -v mode="$1" '$1 == mode { found = 1; $1 = ""; sub(/^ /, ""); print } END { exit !found }'
}

# lab_floor_stop: detaches lab_floor_start's programs (SIGINT: it prints its statistics, if asked).
lab_floor_stop() {
	kill -INT "$FLOOR_PID"
	wait "$FLOOR_PID" || { fail "dpt-hook-floor exited with status $?: $(tail -n 1 "$FLOOR_LOG")"; return 1; }
}

# The equivalent bpftrace script of the benchmarks (/lab/bench-sleep-ratio.bt): bench/bpftrace-files
# packs the host's bpftrace and the UAPI headers its clang includes for tracepoint formats.
lab_bpftrace_setup() {
	tar -xf /lab/bpftrace-headers.tar -C / || { fail "no bpftrace headers in the guest (bench/bpftrace-files)"; return 1; }
	ln -sfn x86_64-linux-gnu/asm /usr/include/asm
}

# lab_bpftrace_start PREFIX: starts the script (output in PREFIX.out, PREFIX.err) in the background
# (BT_PID) and waits for its BEGIN line, printed once every probe is attached. Its argument is the
# size of blk_poll's code, where the arms it counts come from (bpftrace has kaddr but no symbol size).
lab_bpftrace_start() {
	BT_PREFIX=$1
	lab_poll_range || return 1
	# bpftrace 0.17 finds the kernel's BTF by its name, which 5.10 does not report: name the file.
	BPFTRACE_BTF=/sys/kernel/btf/vmlinux bpftrace /lab/bench-sleep-ratio.bt "$poll_size" \
		> "$BT_PREFIX.out" 2> "$BT_PREFIX.err" &
	BT_PID=$!
	lab_wait_for_line "$BT_PID" "$BT_PREFIX.out" '^bpftrace: attached' 300 bpftrace ||
		{ cat "$BT_PREFIX.err"; return 1; }
	say "bpftrace attached"
}

lab_bpftrace_stop() {
	kill -INT "$BT_PID"
	wait "$BT_PID" || say "bpftrace exited with status $?: $(tail -n 3 "$BT_PREFIX.err")"
}

# lab_trace_stop NAME: ends the tracer with SIGINT (it prints its final table), SIGKILL after 60 s.
lab_trace_stop() {
	pid=$(cat "/tmp/$1.pid")
	kill -INT "$pid" 2>/dev/null || true
	i=0
	while kill -0 "$pid" 2>/dev/null; do
		i=$((i + 1))
		if [ $i -ge 240 ]; then
			say "dpas-trace ($1) ignored SIGINT for 60 s: killing it"
			kill -KILL "$pid"
			break
		fi
		sleep 0.25
	done
	wait "$pid" && rc=0 || rc=$?
	echo "$rc" > "/results/$1.rc"
	[ "$rc" = 0 ] || say "dpas-trace ($1) exited with status $rc: $(tail -n 3 "/results/$1.err")"
}

# lab_save_results STATUS: tars /results onto the results disk (serial 'results').
lab_save_results() {
	echo "$1" > /results/guest.rc
	dmesg > /results/dmesg.txt
	res=$(lab_disk_by_serial results) || { echo "[lab] error: no results disk: results are lost"; return 1; }
	tar -cf "/dev/$res" -C /results . && sync
	echo "[lab] guest script finished with status $1; results written"
}
