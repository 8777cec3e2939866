"""Composers: pure functions from articles + config + templates to drafts (emails, posts)."""
