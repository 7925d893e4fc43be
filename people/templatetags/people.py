"""`request|may:"audit"`: what the navigation shows, asked of the policy through the door."""

from __future__ import annotations

from django import template
from django.http import HttpRequest

from vmdash import door
from vmdash.policy import Action, can

register = template.Library()


@register.filter
def may(request: HttpRequest, action: str) -> bool:
    """May the person of `request` do `action` site-wide? (Cosmetic: every view asks again.)"""
    return can(door.who(request), Action(action))
