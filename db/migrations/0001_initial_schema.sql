-- The whole data model of the control plane. Append-only: never edit a migration that has shipped;
-- add 0002_… instead.

create table customers (
    id          uuid primary key,
    created_at  timestamptz not null default now()
);

-- Sign-in identities: a customer is found by (issuer, subject), never by email.
create table oauth_identities (
    id           uuid primary key,
    customer_id  uuid not null references customers (id) on delete cascade,
    issuer       text not null,
    subject      text not null,
    created_at   timestamptz not null default now(),
    unique (issuer, subject)
);
create index oauth_identities_customer on oauth_identities (customer_id);

create table plans (
    code             text primary key,
    name             text not null,
    max_devices      integer not null check (max_devices between 0 and 1000),
    allowed_regions  text[] not null default '{}',
    created_at       timestamptz not null default now(),
    updated_at       timestamptz not null default now()
);

-- One row per period of a customer's subscription; the open row (ended_at null) is the current one.
create table customer_subscriptions (
    id           bigint generated always as identity primary key,
    customer_id  uuid not null references customers (id) on delete cascade,
    plan_code    text not null references plans (code),
    status       text not null check (status in ('trialing', 'active', 'past_due', 'canceled', 'expired')),
    started_at   timestamptz not null,
    ended_at     timestamptz
);
create unique index customer_subscriptions_one_open on customer_subscriptions (customer_id) where ended_at is null;
create index customer_subscriptions_history on customer_subscriptions (customer_id, started_at, id);
create index customer_subscriptions_open_listing on customer_subscriptions (status, plan_code, customer_id) where ended_at is null;

create table devices (
    id           uuid primary key,
    customer_id  uuid not null references customers (id) on delete cascade,
    name         text not null,
    -- base64 WireGuard public key; unique across all customers.
    public_key   text not null unique,
    created_at   timestamptz not null default now()
);
create index devices_customer on devices (customer_id, created_at);

create table vpn_nodes (
    id                 uuid primary key,
    name               text not null unique,
    region             text not null,
    country_code       text,
    city_code          text,
    pool               text,
    capacity           integer not null check (capacity between 1 and 65535),
    public_endpoint    text not null,
    public_key         text not null,
    core_endpoint      text not null,
    healthy            boolean not null default false,
    active_peer_count  integer not null default 0,
    last_heartbeat_at  timestamptz,
    created_at         timestamptz not null default now(),
    updated_at         timestamptz not null default now()
);
create index vpn_nodes_region on vpn_nodes (region);

-- A session is 'provisioning' while entry asks the node's core for the peer, then 'active';
-- 'terminated' and 'failed' rows are history, removed by retention cleanup.
create table sessions (
    id                 uuid primary key,
    customer_id        uuid not null references customers (id) on delete cascade,
    device_id          uuid references devices (id) on delete set null,
    device_public_key  text not null,
    node_id            uuid not null references vpn_nodes (id),
    state              text not null check (state in ('provisioning', 'active', 'terminated', 'failed')),
    assigned_address   text,
    -- SHA-256 of the session key; the key itself is only ever in the customer's hands.
    session_key_hash   bytea not null,
    -- Resolvers handed to the client, as core answered at Connect.
    dns                text[] not null default '{}',
    region             text not null,
    country_code       text,
    city_code          text,
    pool               text,
    created_at         timestamptz not null,
    activated_at       timestamptz,
    terminated_at      timestamptz,
    terminate_reason   text,
    updated_at         timestamptz not null
);
-- Invariant: one live session per customer, decided by the database, not by pre-checks.
create unique index sessions_one_live_per_customer on sessions (customer_id) where state in ('provisioning', 'active');
-- Invariant: no two live sessions on a node share an address.
create unique index sessions_node_address on sessions (node_id, assigned_address)
    where state in ('provisioning', 'active') and assigned_address is not null;
create unique index sessions_key_hash on sessions (session_key_hash);
create index sessions_node_live on sessions (node_id) where state in ('provisioning', 'active');
create index sessions_device_live on sessions (device_id) where state in ('provisioning', 'active');
create index sessions_terminated_at on sessions (terminated_at) where state in ('terminated', 'failed');

create table revoked_tokens (
    jti         text primary key,
    expires_at  timestamptz not null,
    revoked_at  timestamptz not null default now()
);
create index revoked_tokens_expires on revoked_tokens (expires_at);

create table audit_events (
    id           bigint generated always as identity primary key,
    occurred_at  timestamptz not null default now(),
    actor        text not null,
    action       text not null,
    subject      text,
    details      jsonb not null default '{}'
);
create index audit_events_occurred on audit_events (occurred_at);

-- Idempotency-Key records of POST /v1/sessions, scoped per customer, kept 24 h.
create table idempotency_keys (
    customer_id      uuid not null references customers (id) on delete cascade,
    key              text not null,
    request_hash     bytea not null,
    state            text not null check (state in ('pending', 'completed')),
    response_status  integer,
    response_body    text,
    created_at       timestamptz not null default now(),
    expires_at       timestamptz not null,
    primary key (customer_id, key)
);
create index idempotency_keys_expires on idempotency_keys (expires_at);
