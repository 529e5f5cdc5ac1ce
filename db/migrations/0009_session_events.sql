-- Session events (GET /v1/sessions/current/events): every replica LISTENs on session_events and tells the customer's
-- open streams, within a second, that a live session was superseded, ended or moved. The trigger fires for whoever
-- changes the row (claims, logout, device deletion, entitlement enforcement, quotas, sweeps, drain moves, erasure), and
-- the notification goes out when that transaction commits — never for a change that rolled back.
--
-- Payload (JSON, well under pg_notify's 8000 bytes): session_id, customer_id (for the fan-out; no stream is opened for
-- another), kind (superseded | ended | moved), reason, at, and for moved the new node's id, name and location — never an
-- address, a key or anything the customer's GET /v1/sessions/current does not show.
--   superseded: terminate_reason 'replaced' (another device's start with replace_existing took the slot)
--   ended:      any other terminate_reason as recorded (customer_request, device_deleted, subscription_canceled,
--               region_not_allowed, quota_exceeded, provisioning_failed, …); a live row deleted (erasure) is customer_erased
--   moved:      node_drain when the key stayed (the drain migrator moved it), reconnect when the key changed with it
create function sessions_notify_event() returns trigger language plpgsql as $$
declare
    v_kind text;
    v_reason text;
    v_at timestamptz;
    v_node jsonb;
begin
    if tg_op = 'DELETE' then
        v_kind := 'ended';
        v_reason := 'customer_erased';
        v_at := now();
    elsif new.state not in ('provisioning', 'active') then
        v_reason := coalesce(new.terminate_reason, 'unknown');
        v_kind := case when v_reason = 'replaced' then 'superseded' else 'ended' end;
        v_at := coalesce(new.terminated_at, new.updated_at, now());
    else
        v_kind := 'moved';
        v_reason := case when new.session_key_hash is distinct from old.session_key_hash then 'reconnect' else 'node_drain' end;
        v_at := coalesce(new.updated_at, now());
        select jsonb_build_object('id', n.id, 'name', n.name, 'region', n.region, 'country_code', n.country_code,
                                  'city_code', n.city_code, 'pool', n.pool)
            into v_node from vpn_nodes n where n.id = new.node_id;
    end if;
    perform pg_notify('session_events', jsonb_build_object('session_id', old.id, 'customer_id', old.customer_id, 'kind', v_kind,
        'reason', v_reason, 'at', v_at, 'node', v_node)::text);
    return null;
end $$;

-- Row-level, but the WHEN clause keeps every other update (activation, key rotation, heartbeats of nothing) free of it.
create trigger sessions_event_update after update on sessions for each row
    when (old.state in ('provisioning', 'active')
          and (new.state not in ('provisioning', 'active') or new.node_id is distinct from old.node_id))
    execute function sessions_notify_event();
create trigger sessions_event_delete after delete on sessions for each row
    when (old.state in ('provisioning', 'active'))
    execute function sessions_notify_event();
