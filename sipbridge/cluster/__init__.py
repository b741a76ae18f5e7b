"""Cluster mode: the bridge as LiveKit's SIP service beside livekit-server, over psrpc on Redis (docs/cluster.md)."""
