-- A session start's claim in one round trip, and node load without a scan of the sessions table.
--
-- vpn_nodes.live_sessions is the number of live (provisioning or active) sessions on the node, kept by statement-level
-- triggers on sessions for every insert, update (state or node changes) and delete, whoever runs it (claims, activation,
-- moves, sweeps, retention, erasure cascades). A statement's changes are applied node by node in id order, so two bulk
-- statements cannot deadlock on each other's node rows. Capacity is checked against it under the node's row lock.
alter table vpn_nodes add column live_sessions integer not null default 0;

update vpn_nodes n set live_sessions = l.live
from (select node_id, count(*)::int as live from sessions where state in ('provisioning', 'active') group by node_id) l
where l.node_id = n.id;

create function sessions_live_apply(deltas jsonb) returns void language plpgsql as $$
declare
    d record;
begin
    for d in select key::uuid as node_id, value::int as delta from jsonb_each_text(deltas) order by key::uuid loop
        update vpn_nodes set live_sessions = live_sessions + d.delta where id = d.node_id;
    end loop;
end $$;

create function sessions_live_after_insert() returns trigger language plpgsql as $$
begin
    perform sessions_live_apply(coalesce((select jsonb_object_agg(node_id, n) from (
        select node_id, count(*) as n from new_rows where state in ('provisioning', 'active') group by node_id) x), '{}'));
    return null;
end $$;

create function sessions_live_after_update() returns trigger language plpgsql as $$
begin
    perform sessions_live_apply(coalesce((select jsonb_object_agg(node_id, n) from (
        select node_id, sum(delta) as n from (
            select node_id, 1 as delta from new_rows where state in ('provisioning', 'active')
            union all
            select node_id, -1 from old_rows where state in ('provisioning', 'active')) c
        group by node_id having sum(delta) <> 0) x), '{}'));
    return null;
end $$;

create function sessions_live_after_delete() returns trigger language plpgsql as $$
begin
    perform sessions_live_apply(coalesce((select jsonb_object_agg(node_id, -n) from (
        select node_id, count(*) as n from old_rows where state in ('provisioning', 'active') group by node_id) x), '{}'));
    return null;
end $$;

create trigger sessions_live_insert after insert on sessions referencing new table as new_rows
    for each statement execute function sessions_live_after_insert();
create trigger sessions_live_update after update on sessions referencing old table as old_rows new table as new_rows
    for each statement execute function sessions_live_after_update();
create trigger sessions_live_delete after delete on sessions referencing old table as old_rows
    for each statement execute function sessions_live_after_delete();

-- Entry replicas cache the node registry and LISTEN here: a node registered, removed, or changed in anything that
-- decides selection (not its load or heartbeat time, which change all the time; replicas refresh those periodically).
create function vpn_nodes_notify() returns trigger language plpgsql as $$
begin
    perform pg_notify('vpn_nodes_changed', coalesce(new.id, old.id)::text);
    return null;
end $$;

create trigger vpn_nodes_changed_insert_delete after insert or delete on vpn_nodes
    for each row execute function vpn_nodes_notify();
create trigger vpn_nodes_changed_update after update on vpn_nodes for each row
    when ((old.healthy, old.draining, old.capacity, old.region, old.country_code, old.city_code, old.pool, old.public_endpoint, old.public_key, old.core_endpoint, old.name)
        is distinct from (new.healthy, new.draining, new.capacity, new.region, new.country_code, new.city_code, new.pool, new.public_endpoint, new.public_key, new.core_endpoint, new.name))
    execute function vpn_nodes_notify();

-- One session start's claim, one round trip: the customer's entitlement (current subscription period, entitling status,
-- the plan's regions), the device (the customer's own), the node (exists, healthy, heartbeat after p_fresh_after,
-- below capacity, under its row lock), replace_existing (the customer's active session terminated in the same
-- transaction; a start still provisioning is never replaced), and the customer's single slot (the unique partial index
-- sessions_one_live_per_customer, which decides races). status is one of:
--   claimed        the provisioning row exists; claim_seq is its order; the replaced session's columns when one was replaced
--   not_entitled   sub_* describe the current subscription period (all null: none); nothing changed
--   device_gone    no such device of this customer
--   node_gone / node_unfit / node_full   the node does not exist / is unhealthy, stale or draining / is at capacity
--   conflict       the customer has another live session (live_id)
-- p_check_entitlement false skips the subscription, device and node health checks (ISessionStore.ClaimAsync's contract:
-- the device key comes as p_device_key).
create function claim_session_start(
    p_id uuid, p_customer uuid, p_device uuid, p_node uuid, p_key_hash bytea, p_region text, p_country text, p_city text, p_pool text,
    p_now timestamptz, p_replace boolean, p_check_entitlement boolean, p_fresh_after timestamptz, p_device_key text)
returns table (
    r_id uuid, r_customer_id uuid, r_device_id uuid, r_device_public_key text, r_node_id uuid, r_state text, r_assigned_address text,
    r_dns text[], r_region text, r_country_code text, r_city_code text, r_pool text, r_created_at timestamptz, r_session_key_hash bytea,
    r_assigned_address_v6 text, r_claim_seq bigint,
    status text, claim_seq bigint, device_public_key text, live_id uuid, node_live integer,
    sub_plan text, sub_status text, sub_max_devices integer, sub_regions text[])
language plpgsql as $$
#variable_conflict use_column
declare
    v_sub record;
    v_key text := p_device_key;
    v_node record;
    v_old_node uuid;
    v_replaced sessions%rowtype;
    v_seq bigint;
begin
    if p_check_entitlement then
        select s.plan_code, s.status, p.max_devices, p.allowed_regions into v_sub
        from customer_subscriptions s join plans p on p.code = s.plan_code
        where s.customer_id = p_customer
        order by (s.ended_at is null) desc, s.started_at desc, s.id desc
        limit 1;
        if not found or v_sub.status not in ('active', 'trialing')
           or not exists (select 1 from unnest(v_sub.allowed_regions) r where lower(r) = lower(p_region)) then
            status := 'not_entitled';
            sub_plan := v_sub.plan_code; sub_status := v_sub.status; sub_max_devices := v_sub.max_devices; sub_regions := v_sub.allowed_regions;
            return next;
            return;
        end if;
        select d.public_key into v_key from devices d where d.id = p_device and d.customer_id = p_customer;
        if not found then
            status := 'device_gone';
            return next;
            return;
        end if;
    end if;
    device_public_key := v_key;

    -- Both node rows a replace touches are locked up front in id order: the claim's node, and the node of the
    -- session it replaces (whose count the trigger lowers), so two crossing replaces cannot deadlock.
    if p_replace then
        select s.node_id into v_old_node from sessions s where s.customer_id = p_customer and s.state = 'active';
        if v_old_node is not null and v_old_node <> p_node then
            perform 1 from vpn_nodes where id in (p_node, v_old_node) order by id for update;
        end if;
    end if;
    select n.capacity, n.live_sessions, n.healthy, n.draining, n.last_heartbeat_at into v_node from vpn_nodes n where n.id = p_node for update;
    if not found then
        status := 'node_gone';
        return next;
        return;
    end if;
    node_live := v_node.live_sessions;
    -- A draining node takes no new session, whatever a replica's cache still says (another replica drained it a moment ago).
    if v_node.draining or (p_check_entitlement and (not v_node.healthy or v_node.last_heartbeat_at is null or v_node.last_heartbeat_at < p_fresh_after)) then
        status := 'node_unfit';
        return next;
        return;
    end if;
    if v_node.live_sessions >= v_node.capacity then
        status := 'node_full';
        return next;
        return;
    end if;

    if p_replace then
        update sessions s set state = 'terminated', terminated_at = p_now, updated_at = p_now, terminate_reason = 'replaced'
        where s.customer_id = p_customer and s.state = 'active'
        returning s.* into v_replaced;
    end if;

    insert into sessions (id, customer_id, device_id, device_public_key, node_id, state, session_key_hash, region, country_code, city_code, pool,
                          created_at, updated_at)
    values (p_id, p_customer, p_device, v_key, p_node, 'provisioning', p_key_hash, p_region, p_country, p_city, p_pool, p_now, p_now)
    on conflict (customer_id) where state in ('provisioning', 'active') do nothing
    returning sessions.claim_seq into v_seq;
    if v_seq is null then
        -- The slot is held (a start in progress, or an active session without replace): nothing of ours stays, the
        -- replace above included.
        select s.id into live_id from sessions s where s.customer_id = p_customer and s.state in ('provisioning', 'active');
        -- (A replace above found the active row locked by no one else: the slot was then its to take, so a conflict
        -- after a replace cannot happen; a crossing start meets the active row's successor and lands here without one.)
        status := 'conflict';
        return next;
        return;
    end if;

    status := 'claimed';
    claim_seq := v_seq;
    node_live := v_node.live_sessions + 1;
    if v_replaced.id is not null then
        r_id := v_replaced.id; r_customer_id := v_replaced.customer_id; r_device_id := v_replaced.device_id;
        r_device_public_key := v_replaced.device_public_key; r_node_id := v_replaced.node_id; r_state := v_replaced.state;
        r_assigned_address := v_replaced.assigned_address; r_dns := v_replaced.dns; r_region := v_replaced.region;
        r_country_code := v_replaced.country_code; r_city_code := v_replaced.city_code; r_pool := v_replaced.pool;
        r_created_at := v_replaced.created_at; r_session_key_hash := v_replaced.session_key_hash;
        r_assigned_address_v6 := v_replaced.assigned_address_v6; r_claim_seq := v_replaced.claim_seq;
    end if;
    return next;
end $$;
