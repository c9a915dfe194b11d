"""Build-time variables and secrets of apps and workspaces: the rules they obey and how secrets are sealed."""
