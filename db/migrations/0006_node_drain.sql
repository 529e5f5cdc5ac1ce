-- Draining a node (POST /v1/admin/nodes/{id}/drain): it gets no new sessions and its sessions move on their next
-- reconnect; with drain_migrate entry also moves them itself, in batches. draining_since is when the drain began.
alter table vpn_nodes
    add column draining boolean not null default false,
    add column drain_migrate boolean not null default false,
    add column draining_since timestamptz;
