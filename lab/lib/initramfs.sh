# Builds the guest's initramfs (sourced by lab/dpas-lab): busybox, the nvme modules in load order,
# fio and dpas-trace with the shared libraries ldd lists, and the guest scripts from lab/guest/.

# Prints the modules nvme.ko needs, in load order (dependencies first), relative to MODDIR.
nvme_module_order() {
	local moddir=$1 line deps=() i
	if [[ ! -s $moddir/modules.dep ]]; then
		# Debian's package ships no modules.dep (depmod makes it at install): make one in place.
		local release base
		release=$(basename "$moddir")
		base=$(cd "$moddir/../../.." && pwd)
		[[ $(basename "$(dirname "$moddir")") == modules ]] ||
			die "$moddir has no modules.dep and is not a .../lib/modules/RELEASE directory: run depmod for it"
		depmod -b "$base" "$release" || die "depmod -b $base $release failed"
	fi
	line=$(grep -E '(^|/)nvme\.ko(\.[a-z]+)?:' "$moddir/modules.dep") ||
		die "nvme.ko is not in $moddir/modules.dep: is this kernel built with CONFIG_BLK_DEV_NVME=m?"
	read -r -a deps <<< "${line#*:}"
	# modules.dep lists dependencies nearest first; the last needs nothing, so load back to front.
	for ((i = ${#deps[@]} - 1; i >= 0; i--)); do
		echo "${deps[i]}"
	done
	echo "${line%%:*}"
}

# copy_with_libs ROOT BINARY DEST: copies BINARY to ROOT/DEST plus every library ldd lists.
copy_with_libs() {
	local root=$1 bin=$2 dest=$3 lib
	install -D -m 0755 "$bin" "$root/$dest"
	while read -r lib; do
		[[ -e $root$lib ]] || install -D -m 0755 "$(readlink -f "$lib")" "$root$lib"
	done < <(ldd "$bin" | grep -oE '/[^ ]+' | sort -u)
}

# build_initramfs OUT MODDIR DPAS_TRACE_BINARY (MODDIR and the binary may be empty). Stages in
# OUT.root, next to OUT, so that concurrent runs (one per results directory) never share files.
build_initramfs() {
	local out=$1 moddir=$2 tracer=$3 root=$1.root mod src
	need_cmd cpio "run: lab/dpas-lab setup"
	need_cmd fio "run: lab/dpas-lab setup"
	local busybox
	busybox=$(command -v busybox) || die "busybox is not installed: run lab/dpas-lab setup"
	file -L "$busybox" 2>/dev/null | grep -q 'statically linked' ||
		die "$busybox is not static: install busybox-static (lab/dpas-lab setup)"
	rm -rf "$root"
	mkdir -p "$root"/{bin,lab,results,lib/modules}
	install -m 0755 "$busybox" "$root/bin/busybox"
	install -m 0755 "$LAB_DIR/guest/init" "$root/init"
	install -m 0644 "$LAB_DIR/guest/lab.sh" "$LAB_DIR/guest/main.sh" "$LAB_DIR/guest/scenario.sh" "$root/lab/"
	cp -r "$LAB_DIR/scenarios" "$root/lab/scenarios"
	: > "$root/lab/modules.order"
	if [[ -n $moddir ]]; then
		while read -r mod; do
			src=$moddir/$mod
			mod=lib/modules/${mod%.ko*}.ko
			mkdir -p "$(dirname "$root/$mod")"
			case $src in
			*.ko) cp "$src" "$root/$mod" ;;
			*.ko.xz) xz -dc "$src" > "$root/$mod" ;;
			*.ko.zst) zstd -qdc "$src" > "$root/$mod" ;;
			*.ko.gz) gzip -dc "$src" > "$root/$mod" ;;
			*) die "unknown module file $src" ;;
			esac
			echo "$mod" >> "$root/lab/modules.order"
		done < <(nvme_module_order "$moddir")
	fi
	copy_with_libs "$root" "$(command -v fio)" usr/bin/fio
	if [[ -n $tracer ]]; then
		copy_with_libs "$root" "$tracer" usr/bin/dpas-trace
	fi
	mkdir -p "$(dirname "$out")"
	(cd "$root" && find . -print0 | cpio --quiet -o -0 -H newc -R 0:0) > "$out.tmp"
	mv "$out.tmp" "$out"
	rm -rf "$root"
}

# run_initramfs BASE OUT FILES_DIR: appends a cpio of FILES_DIR (the run's settings under /lab,
# extra programs from --guest-bin) to BASE: the kernel unpacks concatenated archives in order.
run_initramfs() {
	local base=$1 out=$2 dir=$3
	cp "$base" "$out"
	(cd "$dir" && find . -mindepth 1 -print0 | cpio --quiet -o -0 -H newc -R 0:0) >> "$out"
}
