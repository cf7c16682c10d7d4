"""Self-contained HTML pages: the leaderboard page and the report page of any result document."""
