-- Revocation of every token of one customer: logout-all ("tokens issued at or before revoked_before are dead") and
-- erasure (erased: every token is dead and the id cannot be created again). The customer is named only by the
-- SHA-256 of its id (sha256(uuid_send(id))), so nothing here identifies an erased customer to anyone who does not
-- already hold its id. Rows go once the last token they cover has expired (expires_at), like revoked_tokens; entry
-- replicas follow the table as they follow revoked_tokens (same NOTIFY channel, same incremental read by revoked_at).
create table revoked_customers (
    customer_key    bytea primary key check (length(customer_key) = 32),
    revoked_before  timestamptz not null,
    erased          boolean not null default false,
    expires_at      timestamptz not null,
    revoked_at      timestamptz not null default now()
);
create index revoked_customers_revoked_at on revoked_customers (revoked_at);
create index revoked_customers_expires on revoked_customers (expires_at);

-- Invariant: an erased customer id does not come back while its tokens could still be alive (a request that
-- authenticated just before the erasure and inserts "customers (id) on conflict do nothing" after it). An AFTER row
-- trigger, not BEFORE: it runs after the insert waited for a concurrent erasure to commit, and its query takes a fresh
-- snapshot that sees that erasure's row. SQLSTATE VE001 is answered 409 customer_erased.
create function refuse_erased_customer() returns trigger language plpgsql as $$
begin
    if exists (select 1 from revoked_customers
               where customer_key = sha256(uuid_send(new.id)) and erased and expires_at > now()) then
        raise exception 'customer was erased' using errcode = 'VE001';
    end if;
    return null;
end
$$;
create trigger customers_not_erased after insert on customers for each row execute function refuse_erased_customer();
