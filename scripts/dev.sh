#!/usr/bin/env bash
# Runs entry + core on embedded defaults: in-memory store, noop dataplane, seeded plan "dev" and node "dev-node-1".
# No root, no PostgreSQL. Prints "ready" once a session can start: entry answers and dev-node-1 is healthy (core has
# synced with entry and sent a heartbeat saying so; until then a start answers 503 no_nodes_available_in_region).
# Ctrl-C stops both.
set -euo pipefail
cd "$(dirname "$0")/.."
for project in src/Vpn.Entry src/Vpn.Core; do dotnet build "$project" -c Release -nologo -v quiet; done
export ASPNETCORE_ENVIRONMENT=Development
pids=()
cleanup() { for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done; }
trap cleanup EXIT
trap 'exit 130' INT TERM
# core: gRPC on 127.0.0.1:50051, heartbeats to entry as the seeded development node.
CORE_GRPC_LISTEN=127.0.0.1:50051 WG_DATAPLANE=noop CORE_ENTRY_URL=http://127.0.0.1:8080 \
  CORE_NODE_ID=00000000-0000-4000-8000-00000000d001 ADMIN_API_TOKEN=dev-admin-token CORE_HEARTBEAT_SECS=5 CORE_RECONCILE_SECS=5 \
  dotnet src/Vpn.Core/bin/Release/net10.0/Vpn.Core.dll &
pids+=("$!")
ASPNETCORE_URLS=http://127.0.0.1:8080 dotnet src/Vpn.Entry/bin/Release/net10.0/Vpn.Entry.dll &
entry_pid=$!
pids+=("$entry_pid")

# The seeded node is a candidate once its heartbeat says healthy (core answers, has synced, sent a beat): poll the
# admin node list for it, for up to a minute.
node_healthy() {
  local nodes
  nodes=$(curl -s --max-time 2 http://127.0.0.1:8080/v1/admin/nodes -H 'x-admin-token: dev-admin-token') || return 1
  grep -q '"name":"dev-node-1"[^}]*"healthy":true' <<<"$nodes"
}
ready=""
for _ in $(seq 1 300); do
  if ! kill -0 "$entry_pid" 2>/dev/null; then
    echo "entry exited during start" >&2
    exit 1
  fi
  if node_healthy; then
    echo "core  listening on http://127.0.0.1:50051 (gRPC, HTTP/2 cleartext, noop dataplane)"
    echo "entry listening on http://127.0.0.1:8080 (in-memory store, admin token dev-admin-token)"
    echo "ready: dev-node-1 is healthy, sessions can start in region \"local\" (Ctrl-C stops both)"
    ready=1
    break
  fi
  sleep 0.2
done
if [ -z "$ready" ]; then
  echo "dev-node-1 is not healthy after a minute: sessions answer 503 until core's heartbeat says healthy" >&2
fi
wait "$entry_pid"
