"""The guide workspace (issue 9): follow-ups and sales stages, the per-guide inbox, Moments tasks, the customer
pool (公海) and the guide scorecard (KPIs with targets)."""
