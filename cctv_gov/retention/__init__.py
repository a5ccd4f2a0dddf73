"""Retention: the purge that erases footage past its site's retention period, on time and never early, and the
records that prove it."""
