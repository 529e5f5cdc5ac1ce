-- Dual stack: core hands every new session an IPv6 tunnel address next to its IPv4 one. Null for sessions started
-- before this (or on a core without IPv6): they keep working on IPv4 alone.
alter table sessions add column assigned_address_v6 text;

-- Invariant: no two live sessions on a node share an IPv6 address (the IPv4 twin of sessions_node_address).
create unique index sessions_node_address_v6 on sessions (node_id, assigned_address_v6)
    where state in ('provisioning', 'active') and assigned_address_v6 is not null;
