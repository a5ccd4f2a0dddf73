"""Evidence holds: footage kept past retention for an incident, only once a General Manager approves it in
writing, and only until its end date."""
