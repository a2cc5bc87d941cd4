#!/usr/bin/env bash
# Tests for hugepage-setup. Safe on any host: on the real system it only runs
# --help, --check and --dry-run (and asserts they change nothing); the
# changing paths (setup, idempotence, --undo, NIC binding) run against a fake
# /sys and /proc with stub mount/umount/modprobe/dpdk-devbind.py commands.
#
#   bash hugepage-setup/test.sh

set -uo pipefail

HERE=$(cd -- "$(dirname -- "${BASH_SOURCE[0]}")" && pwd)
TOOL=$HERE/hugepage-setup
PASSED=0
FAILED=0
WORK=$(mktemp -d)
trap 'rm -rf -- "$WORK"' EXIT

pass() {
	PASSED=$((PASSED + 1))
	printf 'ok   %s\n' "$1"
}

fail() {
	FAILED=$((FAILED + 1))
	printf 'FAIL %s\n' "$1"
	shift
	[[ $# -gt 0 ]] && printf '     %s\n' "$@"
	return 0
}

# check NAME CONDITION-COMMAND...: passes when the command succeeds; returns
# its status so a caller can print more on failure.
check() {
	local name=$1
	shift
	if "$@"; then
		pass "$name"
	else
		fail "$name" "failed: $*"
		return 1
	fi
}

contains() { grep -q -F -e "$2" <<<"$1"; }
lacks() { ! grep -q -e "$2" <<<"$1"; }
file_lacks() { ! grep -q -e "$2" -- "$1"; }

# Runs the tool, capturing stdout+stderr in OUT and the exit code in RC.
run() {
	OUT=$("$TOOL" "$@" 2>&1)
	RC=$?
}

snapshot() {
	{
		cat /proc/sys/vm/nr_hugepages
		cat /sys/devices/system/node/node*/hugepages/hugepages-*/nr_hugepages 2>/dev/null
		grep hugetlbfs /proc/mounts
		ls -la /run/mediafork 2>/dev/null
	} 2>/dev/null
}

# ---------------------------------------------------------------- static

if command -v shellcheck >/dev/null; then
	check "shellcheck hugepage-setup" shellcheck "$TOOL"
	check "shellcheck test.sh" shellcheck "$HERE/test.sh"
fi
check "bash -n" bash -n "$TOOL"

# ---------------------------------------------------------------- --help, usage

run --help
check "--help exits 0" test "$RC" -eq 0
for opt in --pages --size --node --mount --nic --check --dry-run --undo --help; do
	check "--help documents $opt" contains "$OUT" "$opt"
done
run --size 3M --pages 1
check "bad --size is a usage error (2)" test "$RC" -eq 2
run --pages many
check "bad --pages is a usage error (2)" test "$RC" -eq 2
run
check "no action is a usage error (2)" test "$RC" -eq 2
run --nic not-a-pci-address --dry-run
check "bad --nic is a usage error (2)" test "$RC" -eq 2
run --bogus
check "unknown option is a usage error (2)" test "$RC" -eq 2

# ---------------------------------------------------------------- real host, read-only

BEFORE=$(snapshot)

check_shape() {
	local label=$1 out=$2 rc=$3
	check "$label exits 0 or 1" test "$rc" -eq 0 -o "$rc" -eq 1
	local body last
	body=$(sed '$d' <<<"$out")
	last=$(tail -n 1 <<<"$out")
	if [[ -n $body ]] && ! grep -v -E -q '^(ok  |info|warn|FAIL) [a-z0-9-]+: .+' <<<"$body"; then
		pass "$label: every finding is 'STATUS AREA: text'"
	else
		fail "$label: every finding is 'STATUS AREA: text'" "$out"
	fi
	for area in hugepages hugetlbfs iommu vfio-pci nic dpdk; do
		check "$label reports $area" grep -q -E "^(ok  |info|warn|FAIL) $area: " <<<"$body"
	done
	if [[ $rc -eq 0 ]]; then
		check "$label: exit 0 says ready" test "$last" = ready
		check "$label: exit 0 has no FAIL" lacks "$body" "^FAIL"
	else
		check "$label: exit 1 says not ready" grep -q -E '^not ready: [0-9]+ problem\(s\)$' <<<"$last"
		check "$label: exit 1 has a FAIL" grep -q '^FAIL' <<<"$body"
	fi
}

run --check
check_shape "--check" "$OUT" "$RC"
run --check --size 2M --node 0
check_shape "--check --size 2M --node 0" "$OUT" "$RC"

# Dry run: the exact commands for what is missing, and nothing changes.
run --dry-run --pages 64 --state "$WORK/real.state"
check "--dry-run exits 0" test "$RC" -eq 0
check "--dry-run executes nothing (no '+ ' lines)" lacks "$OUT" "^+ "
for d in /sys/devices/system/node/node[0-9]*/hugepages/hugepages-2048kB; do
	[[ -d $d ]] || continue
	if [[ $(cat "$d/nr_hugepages") -ne 64 ]]; then
		check "--dry-run prints the write for $d" contains "$OUT" "echo 64 > $d/nr_hugepages"
	fi
done
if ! awk '$2 == "/dev/hugepages" && $3 == "hugetlbfs" { f = 1 } END { exit !f }' /proc/mounts; then
	check "--dry-run prints the mount" contains "$OUT" "mount -t hugetlbfs -o pagesize=2M nodev /dev/hugepages"
fi
check "--dry-run writes no state file" test ! -e "$WORK/real.state"

run --dry-run --pages 64 --nic 0000:ff:1f.7 --state "$WORK/real.state"
check "--dry-run refuses an unknown NIC" test "$RC" -eq 1
check "unknown NIC message says why" contains "$OUT" "no PCI device 0000:ff:1f.7"

run --dry-run --undo --state "$WORK/real.state"
check "--undo without state has nothing to do" contains "$OUT" "nothing to undo"

# Unprivileged: --check and --dry-run work, real changes are refused.
if [[ $EUID -eq 0 ]] && command -v setpriv >/dev/null; then
	as_nobody() { setpriv --reuid=65534 --regid=65534 --clear-groups "$TOOL" "$@" 2>&1; }
	OUT=$(as_nobody --check)
	RC=$?
	check_shape "--check as nobody" "$OUT" "$RC"
	OUT=$(as_nobody --dry-run --pages 64 --state "$WORK/nobody.state")
	RC=$?
	check "--dry-run as nobody exits 0" test "$RC" -eq 0
	OUT=$(as_nobody --pages 64 --state "$WORK/nobody.state")
	RC=$?
	check "real run as nobody is refused" test "$RC" -eq 1
	check "refusal says root is needed" contains "$OUT" "needs root"
fi

AFTER=$(snapshot)
check "host unchanged (nr_hugepages, mounts, state)" test "$BEFORE" = "$AFTER"

# ---------------------------------------------------------------- fake host: changes, idempotence, undo

FAKE=$WORK/root
make_fake_host() {
	rm -rf -- "$FAKE"
	local n
	for n in 0 1; do
		for s in 2048 1048576; do
			mkdir -p "$FAKE/sys/devices/system/node/node$n/hugepages/hugepages-${s}kB"
			echo 0 >"$FAKE/sys/devices/system/node/node$n/hugepages/hugepages-${s}kB/nr_hugepages"
			echo 0 >"$FAKE/sys/devices/system/node/node$n/hugepages/hugepages-${s}kB/free_hugepages"
		done
	done
	mkdir -p "$FAKE/sys/kernel/mm/hugepages/hugepages-2048kB" "$FAKE/sys/kernel/iommu_groups"
	mkdir -p "$FAKE/sys/bus/pci/drivers/ixgbe" "$FAKE/sys/bus/pci/devices/0000:3b:00.0"
	ln -s ../../../../sys/bus/pci/drivers/ixgbe "$FAKE/sys/bus/pci/devices/0000:3b:00.0/driver"
	mkdir -p "$FAKE/proc" "$FAKE/bin"
	printf 'proc /proc proc rw 0 0\n' >"$FAKE/proc/mounts"
	printf 'Hugepagesize:       2048 kB\n' >"$FAKE/proc/meminfo"
	: >"$FAKE/calls.log"

	# Stubs: log each call and do to the fake tree what the real tool does.
	cat >"$FAKE/bin/mount" <<'EOF'
#!/usr/bin/env bash
echo "mount $*" >>"$HUGEPAGE_SETUP_ROOT/calls.log"
opts=rw; dir=
while [[ $# -gt 0 ]]; do case $1 in -t) shift 2 ;; -o) opts=rw,$2; shift 2 ;; *) dir=$1; shift ;; esac; done
echo "nodev $dir hugetlbfs $opts 0 0" >>"$HUGEPAGE_SETUP_ROOT/proc/mounts"
EOF
	cat >"$FAKE/bin/umount" <<'EOF'
#!/usr/bin/env bash
echo "umount $*" >>"$HUGEPAGE_SETUP_ROOT/calls.log"
m=$HUGEPAGE_SETUP_ROOT/proc/mounts
awk -v d="$1" '$2 != d' "$m" >"$m.new" && mv "$m.new" "$m"
EOF
	cat >"$FAKE/bin/modprobe" <<'EOF'
#!/usr/bin/env bash
echo "modprobe $*" >>"$HUGEPAGE_SETUP_ROOT/calls.log"
s=$HUGEPAGE_SETUP_ROOT/sys
if [[ $1 == -r ]]; then rm -rf "$s/module/vfio_pci" "$s/module/vfio" "$s/bus/pci/drivers/vfio-pci"; exit 0; fi
mkdir -p "$s/module/vfio_pci" "$s/module/vfio/parameters" "$s/bus/pci/drivers/vfio-pci"
echo N >"$s/module/vfio/parameters/enable_unsafe_noiommu_mode"
EOF
	cat >"$FAKE/bin/dpdk-devbind.py" <<'EOF'
#!/usr/bin/env bash
echo "dpdk-devbind.py $*" >>"$HUGEPAGE_SETUP_ROOT/calls.log"
s=$HUGEPAGE_SETUP_ROOT/sys
case $1 in
--bind=*) ln -sfn "../../../../sys/bus/pci/drivers/${1#--bind=}" "$s/bus/pci/devices/$2/driver" ;;
--unbind) rm -f "$s/bus/pci/devices/$2/driver" ;;
esac
EOF
	chmod +x "$FAKE/bin/"*
}

fake() {
	OUT=$(HUGEPAGE_SETUP_ROOT=$FAKE PATH=$FAKE/bin:$PATH "$TOOL" --state "$FAKE/state" "$@" 2>&1)
	RC=$?
}

fake_state() {
	find "$FAKE/sys" "$FAKE/proc" \( -type f -o -type l \) -printf '%p ' -exec sh -c 'if [ -L "$1" ]; then readlink "$1"; else cat "$1"; fi' _ {} \; 2>/dev/null | sort
	cat "$FAKE/state" 2>/dev/null
}

make_fake_host
FAKE_BEFORE=$(fake_state)
N0=$FAKE/sys/devices/system/node/node0/hugepages/hugepages-2048kB
N1=$FAKE/sys/devices/system/node/node1/hugepages/hugepages-2048kB
NIC=$FAKE/sys/bus/pci/devices/0000:3b:00.0

fake --pages 16 --nic 3b:00.0 --mount "$FAKE/hugepages"
check "fake: no IOMMU and no --noiommu refuses the NIC" test "$RC" -eq 1
check "fake: the refusal explains the IOMMU" contains "$OUT" "intel_iommu=on"
check "fake: the refusal changed nothing" test "$(fake_state)" = "$FAKE_BEFORE"

fake --pages 16 --nic 3b:00.0 --noiommu --mount "$FAKE/hugepages" --dry-run
check "fake: --dry-run exits 0" test "$RC" -eq 0
check "fake: --dry-run prints node0 write" contains "$OUT" "echo 16 > $N0/nr_hugepages"
check "fake: --dry-run prints node1 write" contains "$OUT" "echo 16 > $N1/nr_hugepages"
check "fake: --dry-run prints the mount" contains "$OUT" "mount -t hugetlbfs -o pagesize=2M nodev $FAKE/hugepages"
check "fake: --dry-run prints modprobe" contains "$OUT" "modprobe vfio-pci"
check "fake: --dry-run prints the bind" contains "$OUT" "dpdk-devbind.py --bind=vfio-pci 0000:3b:00.0"
check "fake: --dry-run runs nothing" test ! -s "$FAKE/calls.log"
check "fake: --dry-run changes nothing" test "$(fake_state)" = "$FAKE_BEFORE"

fake --pages 16 --nic 3b:00.0 --noiommu --mount "$FAKE/hugepages"
check "fake: setup exits 0" test "$RC" -eq 0 || printf '%s\n' "$OUT"
check "fake: node0 has 16 pages" test "$(cat "$N0/nr_hugepages")" = 16
check "fake: node1 has 16 pages" test "$(cat "$N1/nr_hugepages")" = 16
check "fake: hugetlbfs mounted" grep -q " $FAKE/hugepages hugetlbfs .*pagesize=2M" "$FAKE/proc/mounts"
check "fake: NIC bound to vfio-pci" test "$(basename "$(readlink "$NIC/driver")")" = vfio-pci
check "fake: no-IOMMU mode on" test "$(cat "$FAKE/sys/module/vfio/parameters/enable_unsafe_noiommu_mode")" = 1
check "fake: state remembers the old driver" grep -q -x "nic 0000:3b:00.0 ixgbe" "$FAKE/state"
check "fake: state remembers old page counts" grep -q -x "pages $N0 0" "$FAKE/state"

CALLS=$(cat "$FAKE/calls.log")
AFTER_FIRST=$(fake_state)
fake --pages 16 --nic 0000:3b:00.0 --noiommu --mount "$FAKE/hugepages"
check "fake: second run exits 0" test "$RC" -eq 0
check "fake: second run runs no command" test "$(cat "$FAKE/calls.log")" = "$CALLS"
check "fake: second run changes nothing" test "$(fake_state)" = "$AFTER_FIRST"
check "fake: second run says all is in place" contains "$OUT" "already bound to vfio-pci"

# Let the fake kernel report the pages free, as the real one would.
cp "$N0/nr_hugepages" "$N0/free_hugepages"
cp "$N1/nr_hugepages" "$N1/free_hugepages"
fake --check --nic 0000:3b:00.0
check_shape "fake: --check after setup" "$OUT" "$RC"
check "fake: --check sees the NIC bound" contains "$OUT" "ok   nic: 0000:3b:00.0: bound to vfio-pci"
check "fake: --check sees node0 pages" contains "$OUT" "ok   hugepages: node0 2048kB: 16 reserved, 16 free"
check "fake: --check sees no-IOMMU mode" contains "$OUT" "ok   iommu:"
if pkg-config --exists libdpdk 2>/dev/null; then
	check "fake: --check says ready" test "$RC" -eq 0
fi

fake --pages 4 --size 1G --mount "$FAKE/hugepages"
check "fake: 1G pages on a 2M mount is refused" test "$RC" -eq 1
check "fake: the refusal suggests another mount" contains "$OUT" "/dev/hugepages-1G"

fake --pages 8 --node 1 --mount "$FAKE/hugepages"
check "fake: --node 1 exits 0" test "$RC" -eq 0
check "fake: --node 1 leaves node0" test "$(cat "$N0/nr_hugepages")" = 16
check "fake: --node 1 sets node1" test "$(cat "$N1/nr_hugepages")" = 8
check "fake: state keeps the first 'before' value" test "$(grep -c "^pages $N1 " "$FAKE/state")" = 1

fake --undo --dry-run
check "fake: --undo --dry-run prints the rebind" contains "$OUT" "dpdk-devbind.py --bind=ixgbe 0000:3b:00.0"
check "fake: --undo --dry-run prints the umount" contains "$OUT" "umount $FAKE/hugepages"
check "fake: --undo --dry-run keeps the state" test -f "$FAKE/state"

fake --undo
check "fake: --undo exits 0" test "$RC" -eq 0 || printf '%s\n' "$OUT"
check "fake: NIC back on ixgbe" test "$(basename "$(readlink "$NIC/driver")")" = ixgbe
check "fake: pages given back" test "$(cat "$N0/nr_hugepages") $(cat "$N1/nr_hugepages")" = "0 0"
check "fake: unmounted" file_lacks "$FAKE/proc/mounts" hugetlbfs
check "fake: vfio-pci unloaded" test ! -e "$FAKE/sys/module/vfio_pci"
check "fake: state file removed" test ! -e "$FAKE/state"
fake --undo
check "fake: a second --undo has nothing to do" contains "$OUT" "nothing to undo"

printf 'hugepage-setup: %d passed, %d failed\n' "$PASSED" "$FAILED"
[[ $FAILED -eq 0 ]]
