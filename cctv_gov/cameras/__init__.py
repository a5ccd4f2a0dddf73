"""Cameras: each belongs to one site, has a stable key, a location and the purpose the policy requires."""
