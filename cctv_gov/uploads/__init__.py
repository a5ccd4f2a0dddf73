"""Uploads: how an agent gets a segment into storage — prepare, target, PUT, complete — verified before it
is registered."""
