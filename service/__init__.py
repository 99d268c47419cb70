"""Process plumbing shared by carnet's long-running services (relay, device daemon)."""
