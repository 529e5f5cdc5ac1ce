-- Entry replicas follow revocations incrementally ("rows revoked since my last read"); keep that read indexed.
create index revoked_tokens_revoked_at on revoked_tokens (revoked_at);
