"""Webhooks: admins register URLs for events; the events process delivers them.

models.py    Hook, Delivery (the log and the queue), Occurrence (sent once)
kinds.py     the fixed list of events and the libvirt events each one means
queue.py     turning events into Delivery rows (sinks, checks, "send test")
sender.py    signing, posting, retrying with backoff, in order per hook
checks.py    what no event says: pool fullness, grants ending, failed logins
live.py      registers the sink and the companions with the events service
"""
