"""Consoles in the browser: tickets for the VNC proxy, the serial consumer, presence."""
