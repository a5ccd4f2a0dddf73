"""Written approvals: a General Manager's signed-off decision on one exact scope (evidence holds now,
disclosures later), kept as a signed record that can be checked offline."""
