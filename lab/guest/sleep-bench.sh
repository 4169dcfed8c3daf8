# Guest script of bench/sleep-path --lab: dpt-sleep-bench (copied in with --guest-bin) under TCG,
# the same nanosleep loop the host runs on its real CPU. Arguments from /lab/sleep-bench.args
# (bench/sleep-path passes it with --guest-file), one per line.
set --
while IFS= read -r arg; do set -- "$@" "$arg"; done < /lab/sleep-bench.args
say "dpt-sleep-bench $*"
dpt-sleep-bench "$@" > /results/sleep-bench.tsv 2> /results/sleep-bench.err || {
	cat /results/sleep-bench.err
	fail "dpt-sleep-bench failed"
}
cat /results/sleep-bench.tsv /results/sleep-bench.err
