#!/usr/bin/env bash
# Runs entry + core on embedded defaults: in-memory store, noop dataplane, seeded plan "dev" and node "dev-node-1".
# No root, no PostgreSQL. Ctrl-C stops both.
set -euo pipefail
cd "$(dirname "$0")/.."
for project in src/Vpn.Entry src/Vpn.Core; do dotnet build "$project" -c Release -nologo -v quiet; done
export ASPNETCORE_ENVIRONMENT=Development
core_pid=""
cleanup() { [ -n "$core_pid" ] && kill "$core_pid" 2>/dev/null || true; }
trap cleanup EXIT INT TERM
# core: gRPC on 127.0.0.1:50051, heartbeats to entry as the seeded development node.
CORE_GRPC_LISTEN=127.0.0.1:50051 WG_DATAPLANE=noop CORE_ENTRY_URL=http://127.0.0.1:8080 \
  CORE_NODE_ID=00000000-0000-4000-8000-00000000d001 ADMIN_API_TOKEN=dev-admin-token CORE_HEARTBEAT_SECS=5 CORE_RECONCILE_SECS=5 \
  dotnet src/Vpn.Core/bin/Release/net10.0/Vpn.Core.dll &
core_pid=$!
echo "core  listening on http://127.0.0.1:50051 (gRPC, HTTP/2 cleartext, noop dataplane)"
echo "entry listening on http://127.0.0.1:8080 (in-memory store, admin token dev-admin-token)"
ASPNETCORE_URLS=http://127.0.0.1:8080 dotnet src/Vpn.Entry/bin/Release/net10.0/Vpn.Entry.dll
