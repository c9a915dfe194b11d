"""Emulators of third-party services Starforge talks to: real servers speaking their protocols, for tests and demos."""
