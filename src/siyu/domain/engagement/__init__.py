"""Engagement rules (pure, no I/O): points lots (FIFO), lottery draws, check-in streaks, quizzes, member tiers."""
