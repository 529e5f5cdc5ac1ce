-- A device may not register a node's own WireGuard public key (wireguard-go ignores a peer equal to its own key):
-- device registration looks the key up among the nodes.
create index vpn_nodes_public_key on vpn_nodes (public_key);
