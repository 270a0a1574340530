#!/bin/sh
# The three-region demo on loopback: one etcd shared by the three regions (127.0.0.1:12379, its
# data in a temporary directory), and an origin and a sluice per region (us-east-1 on 8081,
# us-west-2 on 8082, eu-west-1 on 8083; origins on 9081-9083). Every process is stopped by its
# PID when the script ends.
#
#   conf/regions/demo.sh           start everything, show a few requests, wait for Ctrl-C
#   conf/regions/demo.sh --check   start, check what the requests show, stop (used by tests)
#
# SLUICE_BIN, SLUICECTL_BIN and ETCD_BIN override the binaries (default build/proxy/sluice,
# build/ctl/sluicectl and Debian's etcd from the etcd-server package).
set -eu
HERE=$(cd "$(dirname "$0")" && pwd)
ROOT=$(cd "$HERE/../.." && pwd)
SLUICE_BIN=${SLUICE_BIN:-$ROOT/build/proxy/sluice}
SLUICECTL_BIN=${SLUICECTL_BIN:-$ROOT/build/ctl/sluicectl}
ETCD_BIN=${ETCD_BIN:-$(command -v etcd || echo /usr/bin/etcd)}
MODE=${1:-run}
LOGS=$(mktemp -d)
PIDS=""

stop_all() {
  for pid in $PIDS; do kill "$pid" 2>/dev/null || true; done
  for pid in $PIDS; do wait "$pid" 2>/dev/null || true; done
  # A passed check leaves nothing behind; otherwise the logs (and etcd's data) stay for a look.
  if [ "${PASSED:-0}" = 1 ]; then rm -rf "$LOGS"; fi
}
trap stop_all EXIT INT TERM

wait_port() {
  i=0
  until curl -s -o /dev/null "http://127.0.0.1:$1/" 2>/dev/null; do
    i=$((i + 1))
    if [ $i -gt 100 ]; then echo "nothing answers on port $1; logs in $LOGS" >&2; exit 1; fi
    sleep 0.05
  done
}

if [ ! -x "$ETCD_BIN" ]; then
  echo "etcd is not installed: apt-get install etcd-server (the demo keeps its table in etcd)" >&2
  exit 1
fi
if curl -s -o /dev/null http://127.0.0.1:12379/version 2>/dev/null; then
  echo "something already answers on 127.0.0.1:12379; stop it first (the demo starts its own etcd)" >&2
  exit 1
fi
"$ETCD_BIN" --name demo --data-dir "$LOGS/etcd" --log-level warn \
  --listen-client-urls http://127.0.0.1:12379 --advertise-client-urls http://127.0.0.1:12379 \
  --listen-peer-urls http://127.0.0.1:12380 --initial-advertise-peer-urls http://127.0.0.1:12380 \
  --initial-cluster demo=http://127.0.0.1:12380 2>"$LOGS/etcd.log" &
PIDS="$PIDS $!"
i=0
until curl -s -o /dev/null http://127.0.0.1:12379/version 2>/dev/null; do
  i=$((i + 1))
  if [ $i -gt 200 ]; then echo "etcd did not start; its log is $LOGS/etcd.log" >&2; exit 1; fi
  sleep 0.05
done

# The tunnel key and the admin token are made here, on first use: no secret ships in git.
"$HERE/make-secrets.sh"
for spec in us-east-1:9081:8081 us-west-2:9082:8082 eu-west-1:9083:8083; do
  region=${spec%%:*}; rest=${spec#*:}; origin_port=${rest%%:*}; sluice_port=${rest#*:}
  python3 "$HERE/origin.py" --region "$region" --port "$origin_port" 2>"$LOGS/origin-$region.log" &
  PIDS="$PIDS $!"
  "$SLUICE_BIN" --config "$HERE/$region.yaml" 2>"$LOGS/sluice-$region.log" &
  PIDS="$PIDS $!"
done
for port in 9081 9082 9083 8081 8082 8083; do wait_port $port; done

# region_of PORT MEMBER [HEADER...]: the sluice-region that answered.
region_of() {
  port=$1; member=$2; shift 2
  curl -s -o /dev/null -D - -H "x-member-id: $member" "$@" "http://127.0.0.1:$port/" |
    tr -d '\r' | sed -n 's/^sluice-region: //p'
}

show() {
  printf '%-46s -> %s\n' "$1" "$(region_of "$2" "$3" ${4:+-H "$4"})"
}

echo "us-east-1 evacuates 25% of its members (eu-west-1 70, us-west-2 30; latam cohort to us-west-2):"
for m in alice bob carol dave erin frank grace heidi; do show "member $m at us-east-1" 8081 "$m"; done
show "member alice from BR at us-east-1" 8081 alice "x-client-country: BR"
show "member bob, home eu-west-1, at us-east-1" 8081 bob "x-home-region: eu-west-1"
show "member alice, home us-east-1, at us-west-2" 8082 alice "x-home-region: us-east-1"

if [ "$MODE" = "--check" ]; then
  # The answers the documented decision gives (tests/integration/steering_model.py).
  test "$(region_of 8081 alice)" = eu-west-1
  test "$(region_of 8081 bob)" = us-east-1
  test "$(region_of 8081 alice -H 'x-client-country: BR')" = us-west-2
  test "$(region_of 8081 bob -H 'x-home-region: eu-west-1')" = eu-west-1
  test "$(region_of 8082 alice -H 'x-home-region: us-east-1')" = eu-west-1
  test "$(region_of 8082 bob -H 'x-home-region: us-east-1')" = us-east-1
  # Every region's admin API answers sluicectl, with the same table from etcd and one leader.
  "$SLUICECTL_BIN" --admins "$HERE/admins" --token-file "$HERE/admin.token" status >"$LOGS/status"
  test "$(grep -c 'table version 1' "$LOGS/status")" = 3
  test "$(grep -c 'fleet: node .*, leader .*-a (' "$LOGS/status")" = 3
  # A change through one region reaches the others through etcd.
  "$SLUICECTL_BIN" --admin http://127.0.0.1:9912 --token-file "$HERE/admin.token" \
    set eu-west-1 --to us-east-1=50,us-west-2=50 >/dev/null
  i=0
  until [ "$("$SLUICECTL_BIN" --admins "$HERE/admins" --token-file "$HERE/admin.token" status |
             grep -c 'table version 2')" = 3 ]; do
    i=$((i + 1))
    if [ $i -gt 100 ]; then echo "the change did not reach every region" >&2; exit 1; fi
    sleep 0.05
  done
  echo "demo check passed"
  PASSED=1
  exit 0
fi
echo
echo "Try: curl -si -H 'x-member-id: alice' http://127.0.0.1:8081/   (logs in $LOGS; Ctrl-C stops)"
echo "     $SLUICECTL_BIN --admins $HERE/admins --token-file $HERE/admin.token status"
while :; do sleep 3600; done
