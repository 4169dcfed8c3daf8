# The default guest script of `lab/dpas-lab run`: one scenario, one fio run, dpas-trace alongside.
# Window: tracer attached -> counter on -> fio -> counter off -> tracer stopped, so the tracer and
# the independent counter see exactly the same polled I/O.
lab_configure "/lab/scenarios/$SCENARIO.conf"
say "scenario $SCENARIO: $DESCRIPTION"
lab_dump_sysfs /results/sysfs.txt

if [ "$TRACE" = 1 ]; then
	# Arguments from the host, one per line; @DEV@ and @DURATION@ are filled in here.
	set --
	while IFS= read -r arg; do
		arg=$(echo "$arg" | sed "s/@DEV@/$DEV/g; s/@DURATION@/$DURATION/g")
		set -- "$@" "$arg"
	done < /lab/trace.args
	dpas-trace plan --json > /results/plan.json 2> /results/plan.err || say "dpas-trace plan failed: $(tail -n 1 /results/plan.err)"
	lab_trace_start trace "$@"
	# Show its output live (e.g. with --interval); the final table comes at SIGINT.
	tail -n +1 -f /results/trace.out &
	TAIL_PID=$!
fi
lab_counter_start
say "fio: $JOBS job(s), $DURATION s, 4 KiB random reads ${FIO_HIPRI:-(interrupts, no --hipri)}"
lab_fio fio "$DURATION" "$JOBS"
lab_counter_stop counter > /results/counter.env
sed 's/^/[counter] /' /results/counter.env
if [ "$TRACE" = 1 ]; then
	lab_trace_stop trace
	sleep 0.5
	kill "$TAIL_PID"
fi
