# Shared by the bench scripts' summaries (prepended to their awk programs).
# sort_numbers(a, n): sorts a[1..n] in place, ascending (insertion sort: a few thousand values).
function sort_numbers(a, n,    i, j, t) {
	for (i = 2; i <= n; i++) { t = a[i] + 0; for (j = i - 1; j >= 1 && a[j] + 0 > t; j--) a[j + 1] = a[j]; a[j + 1] = t }
}
# median(a, n): the median of a[1..n] (sorting a).
function median(a, n) {
	sort_numbers(a, n)
	return n % 2 ? a[(n + 1) / 2] : (a[n / 2] + a[n / 2 + 1]) / 2
}
# sort_modes(a, n): bench modes in a[1..n] in display order: untraced first, then by name.
function sort_modes(a, n,    i, j, t) {
	for (i = 2; i <= n; i++) {
		t = a[i]
		for (j = i - 1; j >= 1 && (t == "untraced" || (a[j] != "untraced" && a[j] > t)); j--) a[j + 1] = a[j]
		a[j + 1] = t
	}
}
