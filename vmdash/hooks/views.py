"""The webhooks pages: for those who may manage hosts site-wide (superusers,
or a site grant that includes it). Hooks see every host's events, so a
grant on one host is not enough."""

from __future__ import annotations

from django.contrib import messages
from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.utils.translation import gettext as _
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from vmdash import door
from vmdash.audit import Actor, Outcome, record
from vmdash.hooks import queue
from vmdash.hooks.forms import HookForm
from vmdash.hooks.models import Delivery, Hook, new_secret
from vmdash.policy import Action, require
from vmdash.render import wants_partial

LOG_SIZE = 50


def _may_manage(request: HttpRequest) -> None:
    """The door for hooks: 403 unless `request`'s person manages hosts site-wide."""
    require(door.who(request), Action.MANAGE_HOSTS)


def _hook(request: HttpRequest, pk: int) -> Hook:
    _may_manage(request)
    return get_object_or_404(Hook, pk=pk)


def _audit(request: HttpRequest, action: str, hook: Hook, message: str = "") -> None:
    record(
        Actor.of_request(request),
        action,
        None,
        Outcome.OK,
        message,
        object_type="hook",
        object_name=hook.name,
    )


def _summary(hook: Hook) -> str:
    return f"{hook.url} [{', '.join(hook.events)}]{'' if hook.enabled else ' (disabled)'}"


@require_GET
def hook_list(request: HttpRequest) -> HttpResponse:
    _may_manage(request)
    return render(request, "hooks/list.html", {"hooks": Hook.objects.all()})


@require_http_methods(["GET", "POST"])
def hook_add(request: HttpRequest) -> HttpResponse:
    _may_manage(request)
    form = HookForm(request.POST or None, initial={"enabled": True})
    if request.method == "POST" and form.is_valid():
        hook = form.save(commit=False)
        hook.created_by = request.user  # type: ignore[assignment]
        hook.save()
        _audit(request, "hook-add", hook, _summary(hook))
        messages.success(
            request,
            _("Webhook '%(hook)s' added. Its secret is below: give it to the receiver.")
            % {"hook": hook},
        )
        return redirect("hook-detail", hook.pk)
    status = 400 if form.is_bound else 200
    return render(request, "hooks/form.html", {"form": form, "hook": None}, status=status)


@require_GET
def hook_detail(request: HttpRequest, pk: int) -> HttpResponse:
    hook = _hook(request, pk)
    deliveries = Delivery.objects.filter(hook=hook).order_by("-id")[:LOG_SIZE]
    context = {"hook": hook, "deliveries": deliveries}
    template = "hooks/detail.html#log" if wants_partial(request) else "hooks/detail.html"
    return render(request, template, context)


@require_http_methods(["GET", "POST"])
def hook_edit(request: HttpRequest, pk: int) -> HttpResponse:
    hook = _hook(request, pk)
    old = _summary(hook)
    form = HookForm(request.POST or None, instance=hook)
    if request.method == "POST" and form.is_valid():
        hook = form.save()
        _audit(request, "hook-edit", hook, f"{old} → {_summary(hook)}")
        messages.success(request, _("Webhook '%(hook)s' saved.") % {"hook": hook})
        return redirect("hook-detail", hook.pk)
    status = 400 if form.is_bound else 200
    return render(request, "hooks/form.html", {"form": form, "hook": hook}, status=status)


@require_http_methods(["GET", "POST"])
def hook_delete(request: HttpRequest, pk: int) -> HttpResponse:
    """GET asks for confirmation; POST removes the hook and its delivery log."""
    hook = _hook(request, pk)
    if request.method == "POST":
        _audit(request, "hook-delete", hook, _summary(hook))
        hook.delete()
        messages.success(request, _("Webhook '%(hook)s' removed.") % {"hook": hook})
        return redirect("hook-list")
    return render(request, "hooks/delete.html", {"hook": hook})


@require_POST
def hook_test(request: HttpRequest, pk: int) -> HttpResponse:
    """Queue a "ping": the events process delivers it, as any event."""
    hook = _hook(request, pk)
    if not hook.enabled:
        messages.error(request, _("Enable the webhook to send it a test."))
        return redirect("hook-detail", hook.pk)
    delivery = queue.send_test(hook, request.user.get_username())
    _audit(request, "hook-test", hook, f"delivery {delivery.pk}")
    messages.success(request, _("Test queued; its delivery shows in the log below in a moment."))
    return redirect("hook-detail", hook.pk)


@require_POST
def hook_secret(request: HttpRequest, pk: int) -> HttpResponse:
    """A new secret: deliveries not yet sent are signed with it."""
    hook = _hook(request, pk)
    hook.secret = new_secret()
    hook.save(update_fields=["secret"])
    _audit(request, "hook-secret", hook, "new secret")
    messages.success(request, _("Webhook '%(hook)s' has a new secret.") % {"hook": hook})
    return redirect("hook-detail", hook.pk)
