-- The order in which sessions were claimed, from one database sequence shared by every entry replica. Core uses it to
-- tell which of two sessions of one device key is the newer (a replace_existing storm, or a replaced session's peer
-- left behind by a failed removal): the newer claim takes the key over, the older is refused.
alter table sessions add column claim_seq bigint generated always as identity;
