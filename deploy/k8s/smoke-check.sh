#!/usr/bin/env bash
# Post-deploy gate: exits 0 only when entry answers, is ready, its privacy settings are what the environment needs and
# every registered node's core answers GetNodeStatus healthy and synced, with its DNS resolver answering where checked.
#
#   ENTRY_URL=https://api.example.net ADMIN_API_TOKEN=… deploy/k8s/smoke-check.sh
#   (or ADMIN_API_TOKEN_FILE=/path; EXPECT_PRODUCTION=1 also demands strict log redaction, TLS to the cores and cores
#   that check their resolver)
#
# Needs curl and python3. Never prints the token.
set -euo pipefail

ENTRY_URL="${ENTRY_URL:?set ENTRY_URL, e.g. http://127.0.0.1:8080}"
ENTRY_URL="${ENTRY_URL%/}"
if [[ -z "${ADMIN_API_TOKEN:-}" && -n "${ADMIN_API_TOKEN_FILE:-}" ]]; then
  ADMIN_API_TOKEN="$(tr -d '\r\n' < "$ADMIN_API_TOKEN_FILE")"
fi
: "${ADMIN_API_TOKEN:?set ADMIN_API_TOKEN or ADMIN_API_TOKEN_FILE}"
EXPECT_PRODUCTION="${EXPECT_PRODUCTION:-0}"
TIMEOUT="${SMOKE_TIMEOUT_SECS:-10}"

failures=0
pass() { printf 'ok    %s\n' "$1"; }
fail() { printf 'FAIL  %s\n' "$1"; failures=$((failures + 1)); }

# GET path [admin] -> the answer in $body, the HTTP status in $status (0: no answer). Sets globals (no subshell)
# so the status survives; the token goes through a header file descriptor, never argv.
status=0
body=""
get() {
  local path="$1" admin="${2:-}" out header=""
  [[ -n "$admin" ]] && header="x-admin-token: $ADMIN_API_TOKEN"
  # Headers from stdin (@-): an empty line adds none.
  if ! out="$(printf '%s\n' "$header" | curl --silent --max-time "$TIMEOUT" --header @- --output - --write-out '\n%{http_code}' \
      "$ENTRY_URL$path" 2>/dev/null)"; then
    status=0
    body=""
    return 0
  fi
  status="${out##*$'\n'}"
  body="${out%$'\n'*}"
}

json() { python3 -c "import json,sys; d=json.load(sys.stdin); $1"; }

get /healthz
[[ "$status" == 200 ]] && pass "healthz" || fail "healthz answered ${status:-nothing}"

get /readyz
[[ "$status" == 200 ]] && pass "readyz" || fail "readyz answered ${status:-nothing}"

get /v1/admin/readiness admin
if [[ "$status" == 200 || "$status" == 503 ]]; then
  while IFS=$'\t' read -r ok name detail; do
    [[ "$ok" == True ]] && pass "readiness/$name: $detail" || fail "readiness/$name: $detail"
  done < <(printf '%s' "$body" | json 'print("\n".join("\t".join(str(c[k]) for k in ("ok", "name", "detail")) for c in d["checks"]))')
  [[ "$status" == 200 ]] || fail "readiness answered 503"
else
  fail "readiness answered ${status:-nothing} (is ADMIN_API_TOKEN right?)"
fi

get /v1/admin/privacy/policy admin
if [[ "$status" == 200 ]]; then
  mode="$(printf '%s' "$body" | json 'print(d["log_redaction_mode"])')"
  if [[ "$EXPECT_PRODUCTION" == 1 && "$mode" != strict ]]; then
    fail "privacy: log redaction is $mode, production needs strict"
  else
    pass "privacy: log redaction $mode, ended sessions kept $(printf '%s' "$body" | json 'print(d["retention"]["terminated_sessions_days"])') d"
  fi
else
  fail "privacy policy answered ${status:-nothing}"
fi

get /v1/admin/nodes admin
if [[ "$status" == 200 ]]; then
  nodes="$(printf '%s' "$body" | json 'print("\n".join("\t".join(str(n[k]) for k in ("id", "name", "core_endpoint")) for n in d["items"]))')"
  [[ -n "$nodes" ]] || fail "no node registered"
  while IFS=$'\t' read -r id name endpoint; do
    [[ -z "$id" ]] && continue
    if [[ "$EXPECT_PRODUCTION" == 1 && "$endpoint" != https://* && "$endpoint" != unix:* ]]; then
      fail "core/$name: cleartext core endpoint"
    fi
    get "/v1/admin/core/status?node_id=$id" admin
    # The node's DNS resolver (a core that does not report one counts as not checked): answering, not checked, or why not.
    resolver=""
    [[ "$status" == 200 ]] && resolver="$(printf '%s' "$body" | json 'r = d.get("resolver") or {}; print(("answering" if r.get("healthy") else "unhealthy: " + (r.get("detail") or "no answer yet")) if r.get("checked") else "not checked")')"
    if [[ "$resolver" == unhealthy:* ]]; then
      fail "core/$name: resolver ${resolver} (clients would be connected without DNS)"
    elif [[ "$status" == 200 ]] && [[ "$(printf '%s' "$body" | json 'print(d["healthy"] and d["synced"])')" == True ]]; then
      pass "core/$name: healthy, synced, $(printf '%s' "$body" | json 'print(d["active_peers"])') peers, $(printf '%s' "$body" | json 'print(d["dataplane_mode"])') dataplane, resolver $resolver"
    else
      fail "core/$name: status ${status:-nothing} $(printf '%s' "$body" | head -c 300)"
    fi
    if [[ "$EXPECT_PRODUCTION" == 1 && "$resolver" == "not checked" ]]; then
      fail "core/$name: resolver not checked (CORE_RESOLVER_CHECK=false): a resolver that stops answering would go unnoticed"
    fi
  done <<< "$nodes"
else
  fail "node list answered ${status:-nothing}"
fi

if (( failures > 0 )); then
  printf 'smoke check FAILED: %d problem(s)\n' "$failures"
  exit 1
fi
printf 'smoke check passed\n'
