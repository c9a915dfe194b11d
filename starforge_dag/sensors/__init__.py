"""Sensors: the build queue poller and the run-status sensors that keep builds true."""
