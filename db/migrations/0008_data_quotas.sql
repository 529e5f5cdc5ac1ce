-- Fair-use data quotas: a plan's monthly_data_bytes (null = unlimited), counted per customer per billing period.
--
-- What is kept, and nothing more: one running total per customer per billing period (customer_usage), and on each live
-- session the last counters its node reported (usage_generation, usage_rx, usage_tx) so a report counts once. Nothing
-- per destination, per hour or per node beyond the session; the session's counters go with the session (retention).
--
-- Billing periods are calendar periods anchored on the day of the month (UTC) of the customer's first subscription:
-- anchored on the 31st, a period starts on the 31st, or on the month's last day in shorter months (28 or 29 February).
alter table plans add column monthly_data_bytes bigint check (monthly_data_bytes > 0);

alter table sessions add column usage_generation bigint;
alter table sessions add column usage_rx bigint not null default 0;
alter table sessions add column usage_tx bigint not null default 0;
create index sessions_node_usage_generation on sessions (node_id, usage_generation) where usage_generation is not null;

create table customer_usage (
    customer_id   uuid not null references customers (id) on delete cascade,
    period_start  timestamptz not null,
    used_bytes    bigint not null default 0 check (used_bytes >= 0),
    updated_at    timestamptz not null,
    primary key (customer_id, period_start)
);

-- The start of the billing period holding p_at for a period anchored on day p_anchor (1-31) of the month, in UTC.
create function billing_period_start(p_anchor integer, p_at timestamptz) returns timestamptz
language plpgsql immutable strict as $$
declare
    v_local timestamp := p_at at time zone 'UTC';
    v_month timestamp := date_trunc('month', v_local);
    v_start timestamp;
begin
    v_start := v_month + make_interval(days => least(p_anchor, extract(day from v_month + interval '1 month' - interval '1 day')::integer) - 1);
    if v_local < v_start then
        v_month := v_month - interval '1 month';
        v_start := v_month + make_interval(days => least(p_anchor, extract(day from v_month + interval '1 month' - interval '1 day')::integer) - 1);
    end if;
    return v_start at time zone 'UTC';
end $$;

-- The end (the next period's start) of the period that starts at p_start.
create function billing_period_end(p_anchor integer, p_start timestamptz) returns timestamptz
language plpgsql immutable strict as $$
declare
    v_month timestamp := date_trunc('month', p_start at time zone 'UTC') + interval '1 month';
begin
    return (v_month + make_interval(days => least(p_anchor, extract(day from v_month + interval '1 month' - interval '1 day')::integer) - 1))
        at time zone 'UTC';
end $$;

-- The customer's anchor day: the UTC day of month of its first subscription; 1 without one.
create function billing_anchor_day(p_customer uuid) returns integer language sql stable as $$
    select coalesce((select extract(day from min(s.started_at) at time zone 'UTC')::integer
                     from customer_subscriptions s where s.customer_id = p_customer), 1)
$$;

-- The quota of the customer's current subscription's plan (its latest period, as claim_session_start reads it); null
-- when unlimited or without a subscription.
create function customer_monthly_data_bytes(p_customer uuid) returns bigint language sql stable as $$
    select pl.monthly_data_bytes from customer_subscriptions cs join plans pl on pl.code = cs.plan_code
    where cs.customer_id = p_customer
    order by (cs.ended_at is null) desc, cs.started_at desc, cs.id desc
    limit 1
$$;

-- One node's report of its sessions' counters, as one statement. Each entry is the peer's cumulative received and
-- sent bytes within one generation (a counter run of one peer on one device: it restarts from zero, with a new
-- generation, when the peer is re-added or the device restarts; a device key that passes to a new session keeps its
-- run). A generation seen before counts only its growth, a new one all of it, so a report applied twice counts once. Only sessions of this node that are live, or ended in the last
-- ten minutes (a report read before the peer was removed), count. The session rows are locked in id order: two
-- overlapping reports serialize and the second counts only what the first did not.
-- Answers the customers whose total reached their plan's monthly_data_bytes, with their live session (if any).
create function record_node_usage(p_node uuid, p_sessions uuid[], p_generations bigint[], p_rx bigint[], p_tx bigint[], p_now timestamptz)
returns table (customer_id uuid, live_session_id uuid, used_bytes bigint, limit_bytes bigint, period_start timestamptz, resets_at timestamptz)
language plpgsql as $$
#variable_conflict use_column
begin
    return query
    with input as (
        select i.sid, i.gen, i.rx, i.tx from unnest(p_sessions, p_generations, p_rx, p_tx) as i(sid, gen, rx, tx)
    ), current_counters as (
        -- The generation's last counters: this session's, or (a device key that passed from an ended session to a new
        -- one on this node without the peer being re-added: the same counter run) those of the other session of the
        -- same key on this node that reported it.
        select s.id, s.customer_id,
               case when s.usage_generation = i.gen then s.usage_generation else prior.usage_generation end as old_gen,
               case when s.usage_generation = i.gen then s.usage_rx else prior.usage_rx end as old_rx,
               case when s.usage_generation = i.gen then s.usage_tx else prior.usage_tx end as old_tx,
               i.gen, i.rx, i.tx
        from sessions s join input i on i.sid = s.id
        left join lateral (
            select o.usage_generation, o.usage_rx, o.usage_tx from sessions o
            where o.node_id = p_node and o.usage_generation = i.gen and o.device_public_key = s.device_public_key and o.id <> s.id
            order by o.usage_rx + o.usage_tx desc
            limit 1) prior on s.usage_generation is distinct from i.gen
        where s.node_id = p_node and (s.state in ('provisioning', 'active') or s.terminated_at >= p_now - interval '10 minutes')
        order by s.id
        for update of s
    ), counted as (
        -- numeric: two counters near the top of bigint's range add up past it; the totals saturate at bigint's maximum.
        select c.*, case when c.old_gen is distinct from c.gen then c.rx::numeric + c.tx
                         else greatest(c.rx - c.old_rx, 0)::numeric + greatest(c.tx - c.old_tx, 0) end as delta
        from current_counters c
    ), saved as (
        update sessions s set usage_generation = c.gen,
            usage_rx = case when c.old_gen is distinct from c.gen then c.rx else greatest(c.old_rx, c.rx) end,
            usage_tx = case when c.old_gen is distinct from c.gen then c.tx else greatest(c.old_tx, c.tx) end
        from counted c
        where s.id = c.id and (c.delta > 0 or c.old_gen is distinct from c.gen)
        returning s.id
    ), per_customer as (
        select c.customer_id, least(sum(c.delta), 9223372036854775807)::bigint as delta, billing_anchor_day(c.customer_id) as anchor
        from counted c group by c.customer_id having sum(c.delta) > 0
    ), added as (
        insert into customer_usage as u (customer_id, period_start, used_bytes, updated_at)
        -- In customer order, so two reports touching the same customers lock their totals in the same order. The
        -- update time is the day only: the total says how much, not when the customer was last online.
        select p.customer_id, billing_period_start(p.anchor, p_now), p.delta, date_trunc('day', p_now, 'UTC') from per_customer p
        order by p.customer_id
        on conflict (customer_id, period_start) do update
            set used_bytes = least(u.used_bytes::numeric + excluded.used_bytes, 9223372036854775807)::bigint, updated_at = excluded.updated_at
        returning u.customer_id, u.period_start, u.used_bytes
    )
    select a.customer_id,
           (select l.id from sessions l where l.customer_id = a.customer_id and l.state = 'active'),
           a.used_bytes, q.quota, a.period_start, billing_period_end(p.anchor, a.period_start)
    from added a
    join per_customer p on p.customer_id = a.customer_id
    cross join lateral (select customer_monthly_data_bytes(a.customer_id) as quota) q
    where q.quota is not null and a.used_bytes >= q.quota
    ; -- (saved, a data-modifying CTE, runs whether or not it is read)
end $$;

-- claim_session_start (0007) gains the quota: a customer whose plan has monthly_data_bytes and whose total for the
-- current period has reached it gets status quota_exceeded, with quota_resets_at the period's end; nothing changed.
drop function claim_session_start(uuid, uuid, uuid, uuid, bytea, text, text, text, text, timestamptz, boolean, boolean, timestamptz, text);

create function claim_session_start(
    p_id uuid, p_customer uuid, p_device uuid, p_node uuid, p_key_hash bytea, p_region text, p_country text, p_city text, p_pool text,
    p_now timestamptz, p_replace boolean, p_check_entitlement boolean, p_fresh_after timestamptz, p_device_key text)
returns table (
    r_id uuid, r_customer_id uuid, r_device_id uuid, r_device_public_key text, r_node_id uuid, r_state text, r_assigned_address text,
    r_dns text[], r_region text, r_country_code text, r_city_code text, r_pool text, r_created_at timestamptz, r_session_key_hash bytea,
    r_assigned_address_v6 text, r_claim_seq bigint,
    status text, claim_seq bigint, device_public_key text, live_id uuid, node_live integer,
    sub_plan text, sub_status text, sub_max_devices integer, sub_regions text[], quota_resets_at timestamptz)
language plpgsql as $$
#variable_conflict use_column
declare
    v_sub record;
    v_key text := p_device_key;
    v_node record;
    v_old_node uuid;
    v_replaced sessions%rowtype;
    v_seq bigint;
    v_anchor integer;
    v_period timestamptz;
begin
    if p_check_entitlement then
        select s.plan_code, s.status, p.max_devices, p.allowed_regions, p.monthly_data_bytes into v_sub
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
        if v_sub.monthly_data_bytes is not null then
            v_anchor := billing_anchor_day(p_customer);
            v_period := billing_period_start(v_anchor, p_now);
            if coalesce((select u.used_bytes from customer_usage u where u.customer_id = p_customer and u.period_start = v_period), 0)
               >= v_sub.monthly_data_bytes then
                status := 'quota_exceeded';
                quota_resets_at := billing_period_end(v_anchor, v_period);
                return next;
                return;
            end if;
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
