"""Sense for TypeScript notebooks: Enterprise Gateway parts (the Docker process proxy and its launcher)."""
