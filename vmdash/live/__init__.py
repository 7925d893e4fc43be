"""Live updates: libvirt events pushed to every open page. See docs/live-events.md.

events service (service.py)  libvirt callbacks -> typed messages -> channel-layer groups
consumer (consumer.py)       /ws/events/: subscribes to what the page shows, asks the
                             policy per user and per send, re-reads, renders partials
regions (regions.py)         which partial renders which part of which page
"""
