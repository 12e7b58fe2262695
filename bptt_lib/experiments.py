"""The chapter's experiments: one configuration and one runner each, shared by the book and tests."""
