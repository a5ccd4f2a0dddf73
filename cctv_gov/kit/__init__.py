"""Building blocks with no domain rules in them: storage, clock, crypto, Merkle log, jobs."""
