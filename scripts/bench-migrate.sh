# The `migrate` row of bench.sh (sourced after its table; or run alone:
# OCICHECKPOINT_BIN=... bash scripts/bench-migrate.sh). A container holding MIGRATE_MIB MiB
# (default 2048) that rewrites MIGRATE_RATE MiB/s (default 8) and keeps a client connection
# moves from "host A" to "host B" (two network namespaces joined by a veth, a runc root
# each), restored lazily on B (MIGRATE_MODES="lazy eager" adds a full restore row).
# MIGRATE_ROUNDS caps the pre-copy rounds (default 8).
# Downtime is the workload's own figure: the largest gap between two iterations of its loop
# (scripts/migrate-workload.c), asked over the connection that crossed the move.

if [ -z "${BASH_SOURCE[1]:-}" ]; then
    set -euo pipefail
    ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
    BIN=${OCICHECKPOINT_BIN:-$ROOT/.build/release/ocicheckpoint}
    WORK=$(mktemp -d /tmp/ocicheckpoint-bench-migrate.XXXXXX)
    OUT=${BENCH_OUT:-$WORK}
    # MIGRATE_KEEP=1 keeps the images and logs of both sides in $WORK.
    trap 'migrate_cleanup; [ -n "${MIGRATE_KEEP:-}" ] || rm -rf "$WORK" 2>/dev/null || true' EXIT
fi

MIGRATE_NS=ocb-mig-$$
MIGRATE_IMAGES=/dev/shm/ocb-migrate-$$

migrate_cleanup() {
    local r
    for r in "$WORK/runc-migrate-a" "$WORK/runc-migrate-b"; do
        [ -d "$r" ] || continue
        for id in $(runc --root "$r" list -q 2>/dev/null); do runc --root "$r" delete -f "$id" >/dev/null 2>&1 || true; done
    done
    ip netns del "${MIGRATE_NS}c" 2>/dev/null || true
    ip link del "${MIGRATE_NS}h" 2>/dev/null || true
    ip netns del "${MIGRATE_NS}d" 2>/dev/null || true
    ip link del "${MIGRATE_NS}g" 2>/dev/null || true
    ip netns del "${MIGRATE_NS}a" 2>/dev/null || true
    ip netns del "${MIGRATE_NS}b" 2>/dev/null || true
    [ -n "${MIGRATE_KEEP:-}" ] || rm -rf "$MIGRATE_IMAGES"
}

# The container's namespace c on host a (10.252.1.2, joined to us at 10.252.1.1), its
# copy d with the same address on host b (joined to us by a veth without an address; the
# route to 10.252.1.2 moves to it after the move), and hosts a and b (10.252.2.1 and .2).
# Two namespaces as on two machines: host b restores while host a still tears down.
migrate_network() {
    local n=$MIGRATE_NS
    ip netns add "${n}c"
    ip link add "${n}h" type veth peer name "${n}c" netns "${n}c"
    ip addr add 10.252.1.1/30 dev "${n}h"; ip link set "${n}h" up
    ip -n "${n}c" addr add 10.252.1.2/30 dev "${n}c"; ip -n "${n}c" link set "${n}c" up; ip -n "${n}c" link set lo up
    ip netns add "${n}d"
    ip link add "${n}g" type veth peer name "${n}d" netns "${n}d"
    ip link set "${n}g" up
    ip -n "${n}d" addr add 10.252.1.2/30 dev "${n}d"; ip -n "${n}d" link set "${n}d" up; ip -n "${n}d" link set lo up
    ip netns add "${n}a"; ip netns add "${n}b"
    ip link add "${n}a" netns "${n}a" type veth peer name "${n}b" netns "${n}b"
    ip -n "${n}a" addr add 10.252.2.1/30 dev "${n}a"; ip -n "${n}b" addr add 10.252.2.2/30 dev "${n}b"
    local s
    for s in a b; do ip -n "${n}$s" link set "${n}$s" up; ip -n "${n}$s" link set lo up; done
}

# One move; prints "downtime-ms rounds frozen-ms".
migrate_once() {
    local mib=$1 rate=$2 mode=$3
    local dir="$WORK/migrate-$mode" id="ocb-mig-$$-$mode"
    local a="$WORK/runc-migrate-a" b="$WORK/runc-migrate-b"
    rm -rf "$dir" "$MIGRATE_IMAGES"; mkdir -p "$dir/bundle/rootfs"/{bin,proc,sys,dev,tmp} "$a" "$b"
    gcc -O2 -static -o "$dir/bundle/rootfs/bin/migrate-workload" "$ROOT/scripts/migrate-workload.c"
    (cd "$dir/bundle" && runc spec)
    python3 - "$dir/bundle/config.json" "$mib" "$rate" "/var/run/netns/${MIGRATE_NS}c" <<'PY'
import json, sys
p, mib, rate, ns = sys.argv[1:]
c = json.load(open(p))
c["process"]["terminal"] = False
c["process"]["args"] = ["/bin/migrate-workload", mib, "7000", rate]
c["root"] = {"path": "rootfs", "readonly": False}
c["linux"]["namespaces"] = [x for x in c["linux"]["namespaces"] if x["type"] != "network"] + [{"type": "network", "path": ns}]
json.dump(c, open(p, "w"), indent=2)
PY
    cp -a "$dir/bundle" "$dir/bundle-b"
    sed -i "s|/var/run/netns/${MIGRATE_NS}c|/var/run/netns/${MIGRATE_NS}d|" "$dir/bundle-b/config.json"
    # Host B's own cgroups, as on another machine: B's runc restores while A's runc still
    # tears the container down, and would share (and lose) its cgroup.
    sed -i "s|\"linux\": {|\"linux\": {\"cgroupsPath\": \"/$id-b\",|" "$dir/bundle-b/config.json"
    runc --root "$a" run -d --bundle "$dir/bundle" "$id" </dev/null >"$dir/run.out" 2>&1
    local lazy=()
    [ "$mode" = lazy ] && lazy=(--lazy-pages)
    # The client: one connection across the move, asked for the gap and a memory check after.
    python3 - "$BIN" "$MIGRATE_NS" "$a" "$b" "$id" "$dir" "$MIGRATE_IMAGES" "${MIGRATE_ROUNDS:-8}" "${lazy[@]}" <<'PY'
import socket, subprocess, sys, time
bin, ns, a, b, id, dir, images, rounds = sys.argv[1:9]
lazy = sys.argv[9:]
for _ in range(600):
    try:
        s = socket.create_connection(("10.252.1.2", 7000), timeout=600); break
    except OSError: time.sleep(0.1)
f = s.makefile("rw")
def ask(line):
    f.write(line + "\n"); f.flush(); return f.readline().strip()
assert ask("PING") == "PONG 1"
time.sleep(1)
ask("RESET")
recv = subprocess.Popen(["nsenter", "--net=/var/run/netns/%sb" % ns, bin, "receive", "--listen", "10.252.2.2:7100",
                         "--bundle", dir + "/bundle-b", "--root", b, "--id", id, "--work", images, "-o", "receive.log", "-v4"],
                        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
assert "listening" in recv.stdout.readline()
m = subprocess.run(["nsenter", "--net=/var/run/netns/%sa" % ns, bin, "migrate", "--to", "10.252.2.2:7100", "--root", a,
                    "--work", dir + "/source", "--rounds", rounds] + lazy + [id], capture_output=True, text=True)
open(dir + "/migrate.out", "w").write(m.stdout + m.stderr)
if m.returncode != 0:
    recv.kill()
    sys.stderr.write("bench: migrate: " + m.stderr); print("fail - -"); sys.exit(0)
recv.wait()
subprocess.run(["ip", "route", "replace", "10.252.1.2/32", "dev", ns + "g", "src", "10.252.1.1"], check=True)
pong, gap, check = ask("PING"), ask("GAP"), ask("CHECK")
if pong != "PONG 2" or not check.startswith("CHECK OK"):
    sys.stderr.write("bench: after the move: %s, %s\n" % (pong, check)); print("fail - -"); sys.exit(0)
import re
rounds = re.search(r"(\d+) pre-copy round", m.stdout).group(1)
frozen = re.search(r"frozen (\d+) ms", m.stdout).group(1)
print("%.1f %s %s" % (int(gap.split()[1]) / 1000, rounds, frozen))
PY
    mkdir -p "$OUT/logs"
    cp "$dir/migrate.out" "$OUT/logs/migrate-$mode.out" 2>/dev/null || true
    runc --root "$b" kill "$id" KILL >/dev/null 2>&1 || true
    sleep 0.5
    ip route del 10.252.1.2/32 2>/dev/null || true
    runc --root "$b" delete -f "$id" >/dev/null 2>&1 || true
    runc --root "$a" delete -f "$id" >/dev/null 2>&1 || true
}

migrate_bench() {
    local mib=${MIGRATE_MIB:-2048} rate=${MIGRATE_RATE:-8} mode line result down rounds frozen
    command -v runc >/dev/null && command -v nsenter >/dev/null || { echo "== skip migrate: runc or nsenter is missing"; return 0; }
    mkdir -p "$OUT"
    migrate_cleanup
    migrate_network
    for mode in ${MIGRATE_MODES:-lazy}; do
        echo "== migrate $mib MiB writing $rate MiB/s ($mode restore)"
        # A command substitution waits for the whole move, its teardown included.
        result=$(migrate_once "$mib" "$rate" "$mode") || result=""
        read -r down rounds frozen <<<"${result:-fail - -}"
        line=$(printf "migrate %s MiB writing %s MiB/s (%s): downtime %s ms (workload's largest gap), %s rounds, final frozen %s ms" \
            "$mib" "$rate" "$mode" "$down" "$rounds" "$frozen")
        echo "$line" | tee -a "$OUT/bench.txt"
        [ "$down" != fail ] || FAILED=1
    done
    migrate_cleanup
}

migrate_bench
