"""Depot: remote BuildKit builders for customer apps, reached through Depot's gRPC API."""
