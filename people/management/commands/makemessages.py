"""makemessages that also finds the project's gettext aliases.

xgettext only knows the names it is told: besides Django's own keywords,
the code marks strings with `gettext_lazy as _l` (choices, labels) and
`gettext_noop as _t` (tables translated when shown). Without these, their
strings would silently stay out of locale/ru/LC_MESSAGES/django.po.
"""

from __future__ import annotations

from django.core.management.commands import makemessages


class Command(makemessages.Command):
    xgettext_options = [*makemessages.Command.xgettext_options, "--keyword=_l", "--keyword=_t"]
