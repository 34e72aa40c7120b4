#!/usr/bin/env bash
# Instructions per operation of each server, counted by valgrind (callgrind), side by side.
#
#   python -m bench.ldap_bench --only bind --keep --workdir /tmp/lwb   # prints its work directory
#   bash bench/instructions.sh /tmp/lwb/lwbench-XXXX [bind|search|modify|add|mix] [connections]
#
# Each server runs under callgrind with instrumentation off; bench.loadgen warms it up, then
# instrumentation is on for a measured run only. The figure is the instructions the server
# executed (all its threads; Lightwave with one worker, so that one process does all the
# work) divided by the operations completed. Unlike CPU time it does not move with what else
# the machine is doing, so a change can be judged on a noisy machine in one run; it is not
# CPU time (a cache miss costs more than an instruction), and system calls are not counted.
# Under valgrind the servers run about 50 times slower: the operation rate says nothing.
set -euo pipefail
KEEP=${1:?usage: bench/instructions.sh WORKDIR [workload] [connections]}
WL=${2:-bind}
CONNS=${3:-8}
SECONDS_MEASURED=${SECONDS_MEASURED:-20}
REPO=$(cd "$(dirname "$0")/.." && pwd)
PY=$REPO/.venv/bin/python
OUT=$(mktemp -d /tmp/lw-instr-XXXX)
trap 'rm -rf "$OUT"' EXIT
command -v valgrind >/dev/null || { echo "valgrind is needed: apt-get install valgrind" >&2; exit 2; }
[ -d "$KEEP/lightwave/data" ] && [ -f "$KEEP/slapd/slapd.conf" ] || {
  echo "$KEEP: not a work directory kept by bench.ldap_bench --keep (lightwave/data, slapd/slapd.conf)" >&2; exit 2; }
PEOPLE=$(grep -c "^dn: uid=" "$KEEP/people.ldif" || true)
WINDOW=$([ "$WL" = bind ] && echo 1 || echo 8)

measure() {  # name port pid -> "name instructions/op"
  local name=$1 port=$2 pid=$3 i line ops ir
  for i in $(seq 240); do
    (exec 3<>/dev/tcp/127.0.0.1/$port) 2>/dev/null && break
    sleep 1
  done
  sleep 2
  "$PY" -m bench.loadgen --port "$port" --workload "$WL" --conns "$CONNS" --window "$WINDOW" \
    --duration 5 --warmup 1 --entries "$PEOPLE" >/dev/null 2>&1
  callgrind_control -i on "$pid" >/dev/null 2>&1
  line=$("$PY" -m bench.loadgen --port "$port" --workload "$WL" --conns "$CONNS" --window "$WINDOW" \
    --duration "$SECONDS_MEASURED" --warmup 0 --entries "$PEOPLE" 2>&1 | tail -n 1)
  callgrind_control -i off "$pid" >/dev/null 2>&1
  callgrind_control -d "$pid" >/dev/null 2>&1
  kill "$pid"; wait "$pid" 2>/dev/null || true
  ops=$(echo "$line" | grep -o "[0-9,]* ops/s" | head -1 | tr -d ', ops/')
  ir=$(cat "$OUT/cg.$name".* 2>/dev/null | grep "^totals:" | awk '{s+=$2} END {printf "%d\n", s}')
  echo "$name $(( ir / (ops * SECONDS_MEASURED) ))"
}

cd "$REPO"
# valgrind cannot reserve the default 64 GiB (Lightwave) or 32 GiB (slapd) of address space
sed 's/^map_size_gb = .*/map_size_gb = 4/' conf/lightwave.toml > "$OUT/lightwave.toml"
LIGHTWAVE_ADMIN_PASSWORD=unused valgrind --tool=callgrind --instr-atstart=no \
  --callgrind-out-file="$OUT/cg.lightwave.%p" "$PY" -m lightwave.cli up --config "$OUT/lightwave.toml" \
  --data-dir "$KEEP/lightwave/data" --domain lightwave.local --listen 127.0.0.1 --ldap-port 20901 \
  --ldaps-port 20902 --https-port 20903 --workers 1 --quiet-ops >"$OUT/lightwave.log" 2>&1 &
ours=$(measure lightwave 20901 $!)
sed 's/^maxsize .*/maxsize 4294967296/' "$KEEP/slapd/slapd.conf" > "$OUT/slapd.conf"
valgrind --tool=callgrind --instr-atstart=no --callgrind-out-file="$OUT/cg.slapd.%p" \
  /usr/sbin/slapd -f "$OUT/slapd.conf" -h ldap://127.0.0.1:20904/ -d 0 >"$OUT/slapd.log" 2>&1 &
theirs=$(measure slapd 20904 $!)
a=${ours##* }; b=${theirs##* }
printf '%s x%s, instructions per operation (callgrind)\n' "$WL" "$CONNS"
printf '  slapd      %12s\n  lightwave  %12s   %s of slapd'"'"'s\n' "$b" "$a" \
  "$(awk -v a="$a" -v b="$b" 'BEGIN { if (b > 0) printf "%.2fx", a / b; else print "-" }')"
