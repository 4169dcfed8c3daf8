# Fetches Debian 11's 5.10 kernel package into lab/cache/kernel/ (sourced by lab/dpas-lab).
# The mirror is read from this machine's apt sources at run time and never written into the repo;
# apt runs with a private state directory so the host's package lists stay untouched.

KERNEL_CACHE=$CACHE_DIR/kernel
APT_DIR=$CACHE_DIR/apt

# Prints the first Debian archive URI found in the host's apt sources (one-line and deb822 formats).
debian_mirror_uri() {
	local files=() f uri
	[[ -f /etc/apt/sources.list ]] && files+=(/etc/apt/sources.list)
	for f in /etc/apt/sources.list.d/*.list /etc/apt/sources.list.d/*.sources; do
		[[ -f $f ]] && files+=("$f")
	done
	((${#files[@]})) || return 1
	# One-line format: "deb [opts] URI suite comp"; deb822: "URIs: URI ...". Keep URIs whose path
	# ends in /debian (the main archive, not debian-security or third-party repositories).
	uri=$(
		{
			sed -nE 's/^[[:space:]]*deb[[:space:]]+(\[[^]]*\][[:space:]]+)?([^[:space:]]+).*/\2/p' "${files[@]}"
			sed -nE 's/^[[:space:]]*URIs:[[:space:]]*(.*)$/\1/p' "${files[@]}" | tr ' ' '\n'
		} | grep -E '^(https?|file)://[^[:space:]]*/debian/?$' | head -n1
	)
	[[ -n $uri ]] || return 1
	printf '%s\n' "${uri%/}"
}

# Runs apt-get/apt-cache against the private bullseye list only.
private_apt() {
	local tool=$1
	shift
	"$tool" \
		-o Dir::State::Lists="$APT_DIR/lists" \
		-o Dir::State::Status="$APT_DIR/status" \
		-o Dir::Cache="$APT_DIR/cache" \
		-o Dir::Etc::SourceList="$APT_DIR/sources.list" \
		-o Dir::Etc::SourceParts="$APT_DIR/sources.list.d" \
		-o Dir::Etc::Preferences=/dev/null \
		-o Dir::Etc::PreferencesParts="$APT_DIR/preferences.d" \
		-o APT::Sandbox::User=root \
		-o APT::Architecture=amd64 \
		-o Acquire::Languages=none \
		"$@"
}

# Sets KERNEL_RELEASE, KERNEL_BZIMAGE, KERNEL_MODULES for the cached Debian kernel, downloading it
# when it is not cached yet.
fetch_debian_kernel() {
	local stamp=$KERNEL_CACHE/release
	if [[ -s $stamp ]]; then
		KERNEL_RELEASE=$(<"$stamp")
		KERNEL_BZIMAGE=$KERNEL_CACHE/root/boot/vmlinuz-$KERNEL_RELEASE
		KERNEL_MODULES=$KERNEL_CACHE/root/lib/modules/$KERNEL_RELEASE
		[[ -f $KERNEL_BZIMAGE && -d $KERNEL_MODULES ]] && return 0
	fi
	need_cmd apt-get "this lab needs a Debian-based host"
	need_cmd dpkg "this lab needs a Debian-based host"
	local mirror
	mirror=$(debian_mirror_uri) ||
		die "no Debian archive (a URI ending in /debian) found in /etc/apt/sources.list or /etc/apt/sources.list.d/: add one, or pass --kernel PATH/TO/bzImage --modules DIR"
	mkdir -p "$APT_DIR/sources.list.d" "$APT_DIR/preferences.d" "$APT_DIR/lists/partial" "$APT_DIR/cache/archives/partial" "$KERNEL_CACHE"
	: > "$APT_DIR/status"
	# No trusted=yes: the host's Debian archive keyring verifies bullseye's Release file.
	printf 'deb %s bullseye main\n' "$mirror" > "$APT_DIR/sources.list"
	log "updating a private package list for Debian 11 (bullseye) from the host's Debian mirror"
	private_apt apt-get -q update >&2 ||
		die "apt-get update for bullseye failed (see above): check the network and that the mirror in /etc/apt/sources* still serves bullseye"
	local pkg
	pkg=$(private_apt apt-cache pkgnames linux-image-5.10.0- |
		grep -E '^linux-image-5\.10\.0-[0-9]+-amd64-unsigned$' | sort -t- -k4,4n | tail -n1)
	[[ -n $pkg ]] || die "no linux-image-5.10.0-NN-amd64-unsigned package in bullseye's list: check the mirror"
	log "downloading $pkg"
	rm -rf "$KERNEL_CACHE/deb" "$KERNEL_CACHE/root"
	mkdir -p "$KERNEL_CACHE/deb"
	(cd "$KERNEL_CACHE/deb" && private_apt apt-get -q download "$pkg" >&2) ||
		die "apt-get download $pkg failed (see above): check the network"
	dpkg -x "$KERNEL_CACHE"/deb/"$pkg"_*.deb "$KERNEL_CACHE/root"
	KERNEL_RELEASE=${pkg#linux-image-}
	KERNEL_RELEASE=${KERNEL_RELEASE%-unsigned}
	KERNEL_BZIMAGE=$KERNEL_CACHE/root/boot/vmlinuz-$KERNEL_RELEASE
	KERNEL_MODULES=$KERNEL_CACHE/root/lib/modules/$KERNEL_RELEASE
	[[ -f $KERNEL_BZIMAGE && -d $KERNEL_MODULES ]] ||
		die "$pkg unpacked without boot/vmlinuz-$KERNEL_RELEASE or lib/modules/$KERNEL_RELEASE: remove $KERNEL_CACHE and retry"
	printf '%s\n' "$KERNEL_RELEASE" > "$stamp"
	log "Debian kernel $KERNEL_RELEASE cached in $KERNEL_CACHE"
}
