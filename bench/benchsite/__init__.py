"""A bench-only Django site: the portal plus views that exist only for measuring."""
