"""Runnable stand-ins (real servers on loopback) for every external system, with fault injection."""
