"""People, NVR agents, their per-site roles and their API tokens."""
