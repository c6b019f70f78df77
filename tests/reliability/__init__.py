"""Reliability: bad input, crashes and cancellations never lose work or leave a mess (issue 6)."""
