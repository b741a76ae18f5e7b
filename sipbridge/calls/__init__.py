"""Call flows: inbound (INVITE to room), and later outbound and transfer."""
