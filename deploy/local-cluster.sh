#!/usr/bin/env bash
# Starts Palaver nodes (three by default) behind nginx on loopback, on the machine's PostgreSQL, NATS
# and Redis, in their own namespace. Prints the address; `local-cluster.sh stop DIR` ends it.
#
#   BIN=target/release/palaver deploy/local-cluster.sh
#
# Ports: nginx on BASE_PORT (default 18080), nodes on BASE_PORT+1..NODES, their metrics on
# METRICS_PORT+1..NODES (default 19090+i; not behind nginx); chosen away from the services'
# own ports. Variables deliberately avoid the PALAVER_ prefix, which the
# server reads as configuration.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"

if [ "${1:-}" = stop ]; then
  dir="${2:?usage: local-cluster.sh stop DIR}"
  [ -f "$dir/nginx.pid" ] && kill "$(cat "$dir/nginx.pid")" 2>/dev/null || true
  for pid in "$dir"/node*.pid; do [ -f "$pid" ] && kill "$(cat "$pid")" 2>/dev/null || true; done
  exit 0
fi

BIN="${BIN:-target/release/palaver}"
BASE_PORT="${BASE_PORT:-18080}"
METRICS_PORT="${METRICS_PORT:-19090}"
NODES="${NODES:-3}"
NAMESPACE="${NAMESPACE:-localcluster}"
STORE="${STORE:-postgres://postgres@127.0.0.1:5432/test}"
BUS="${BUS:-nats://127.0.0.1:4222}"
CACHE="${CACHE:-redis://127.0.0.1:6379}"
DIR="${DIR:-$(mktemp -d /tmp/palaver-cluster.XXXXXX)}"
# Every node signs and checks tokens with one secret.
SECRET="${SECRET:-$(head -c 32 /dev/urandom | od -An -tx1 | tr -d ' \n')}"

ready() { curl -fsS "http://127.0.0.1:$1/readyz" >/dev/null 2>&1; }
wait_ready() {
  for _ in $(seq 100); do ready "$1" && return 0; sleep 0.1; done
  echo "node on port $1 did not become ready; see $DIR" >&2
  return 1
}

start_node() {
  local i="$1" port=$((BASE_PORT + $1))
  mkdir -p "$DIR/node$i"
  PALAVER_JWT_SECRET="$SECRET" PALAVER_NAMESPACE="$NAMESPACE" \
    PALAVER_TRUSTED_PROXIES='["127.0.0.1"]' \
    PALAVER_METRICS_LISTEN="127.0.0.1:$((METRICS_PORT + i))" "$BIN" serve \
    --listen "127.0.0.1:$port" --data-dir "$DIR/node$i" \
    --store "$STORE" --bus "$BUS" --cache "$CACHE" >"$DIR/node$i.log" 2>&1 &
  echo $! >"$DIR/node$i.pid"
  wait_ready "$port"
}

start_node 1
# One VAPID key for the deployment: browsers bind push subscriptions to it.
for i in $(seq 2 "$NODES"); do
  mkdir -p "$DIR/node$i" && cp "$DIR/node1/vapid-private.pem" "$DIR/node$i/"
  start_node "$i"
done

upstreams=""
for i in $(seq 1 "$NODES"); do
  upstreams+="        server 127.0.0.1:$((BASE_PORT + i)) max_fails=1 fail_timeout=3s;"$'\n'
done
mkdir -p "$DIR"/{client_body,proxy,fastcgi,uwsgi,scgi}
while IFS= read -r line; do
  if [[ "$line" == *@UPSTREAMS@* ]]; then
    printf '%s' "$upstreams"
  else
    line="${line//@LISTEN@/127.0.0.1:$BASE_PORT}"
    printf '%s\n' "${line//@PREFIX@/$DIR}"
  fi
done <"$here/nginx.conf.template" >"$DIR/nginx.conf"
nginx -c "$DIR/nginx.conf" -p "$DIR"
wait_ready "$BASE_PORT"
echo "Palaver cluster: http://127.0.0.1:$BASE_PORT ($NODES nodes on $((BASE_PORT + 1))-$((BASE_PORT + NODES)), namespace $NAMESPACE)"
echo "metrics: http://127.0.0.1:$((METRICS_PORT + 1))/metrics .. http://127.0.0.1:$((METRICS_PORT + NODES))/metrics"
echo "state and logs: $DIR   stop: $0 stop $DIR"
