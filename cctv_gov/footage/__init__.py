"""Footage: registered segments — finding them (listings, gaps) and playing them back, every read audited."""
