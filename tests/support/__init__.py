"""Local stand-ins for remote APIs, served over real HTTP(S) on loopback."""
