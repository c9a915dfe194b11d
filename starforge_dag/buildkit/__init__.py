"""A Python client for BuildKit: transport (tcp/unix/docker), LLB builder, Control client, registry push."""
