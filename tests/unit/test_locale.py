"""The Russian catalogue (issue 14): complete, not fuzzy, placeholders kept,
three plural forms, and loaded: a browser asking for Russian gets Russian."""

from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest
from django.test import Client
from django.utils import translation

PO = Path(__file__).resolve().parents[2] / "locale" / "ru" / "LC_MESSAGES" / "django.po"
PLACEHOLDER = re.compile(r"%\(\w+\)[sd]|%%|%[sd]")


def entries() -> list[dict[str, object]]:
    """The .po's entries: flags, msgid, msgid_plural and msgstr forms (a small
    reader of the format msgfmt and makemessages write)."""
    found: list[dict[str, object]] = []
    for block in PO.read_text(encoding="utf-8").split("\n\n"):
        entry: dict[str, object] = {"flags": "", "msgstr": {}}
        field = ""
        for line in block.splitlines():
            if line.startswith("#,"):
                entry["flags"] = line
            elif line.startswith("#"):
                continue
            elif m := re.match(r"(msgctxt|msgid_plural|msgid|msgstr(?:\[(\d)\])?) (\".*\")$", line):
                field, text = m.group(1), ast.literal_eval(m.group(3))
                if field.startswith("msgstr"):
                    field = f"msgstr{m.group(2) or 0}"
                    entry["msgstr"][field] = text  # type: ignore[index]
                else:
                    entry[field] = text
            elif line.startswith('"'):
                text = ast.literal_eval(line)
                if field.startswith("msgstr"):
                    entry["msgstr"][field] += text  # type: ignore[index]
                else:
                    entry[field] = str(entry[field]) + text
        if "msgid" in entry:
            found.append(entry)
    return found


def test_the_catalogue_says_russian_with_three_plural_forms() -> None:
    header = entries()[0]
    assert header["msgid"] == ""
    assert "fuzzy" not in str(header["flags"])
    text = header["msgstr"]["msgstr0"]  # type: ignore[index]
    assert "Language: ru\n" in text
    assert "Plural-Forms: nplurals=3;" in text


def test_every_entry_is_translated_and_none_is_fuzzy() -> None:
    messages = entries()[1:]
    assert len(messages) > 900  # the whole interface, not a sample
    untranslated = [e["msgid"] for e in messages if not all(e["msgstr"].values())]  # type: ignore[attr-defined]
    fuzzy = [e["msgid"] for e in messages if "fuzzy" in str(e["flags"])]
    assert untranslated == []
    assert fuzzy == []


def test_placeholders_and_plural_forms_are_kept() -> None:
    for e in entries()[1:]:
        forms = e["msgstr"]
        if "msgid_plural" in e:
            assert sorted(forms) == ["msgstr0", "msgstr1", "msgstr2"], e["msgid"]  # type: ignore[arg-type]
            want = sorted(set(PLACEHOLDER.findall(str(e["msgid_plural"]))))
            for form in forms.values():  # type: ignore[attr-defined]
                # Russian form 0 serves 21, 31...: it must name the number too.
                assert sorted(set(PLACEHOLDER.findall(form))) == want, (e["msgid"], form)
        else:
            want = sorted(PLACEHOLDER.findall(str(e["msgid"])))
            assert sorted(PLACEHOLDER.findall(forms["msgstr0"])) == want, e["msgid"]  # type: ignore[index]


@pytest.mark.parametrize(
    ("n", "word"),
    [(1, "машина"), (2, "машины"), (5, "машин"), (11, "машин"), (21, "машина"), (22, "машины")],
)
def test_the_compiled_catalogue_counts_in_russian(n: int, word: str) -> None:
    with translation.override("ru"):
        text = translation.ngettext("%(counter)s VM", "%(counter)s VMs", n) % {"counter": n}
    assert text == f"{n} {word}"


@pytest.mark.django_db
def test_a_browser_asking_for_russian_gets_the_login_page_in_russian(client: Client) -> None:
    page = client.get("/accounts/login/", HTTP_ACCEPT_LANGUAGE="ru-RU,ru;q=0.9,en;q=0.5")
    assert page.status_code == 200
    html = page.content.decode()
    assert '<html lang="ru">' in html
    assert "Вход в vmdash" in html and "Log in to vmdash" not in html
    english = client.get("/accounts/login/", HTTP_ACCEPT_LANGUAGE="en-US")
    assert "Log in to vmdash" in english.content.decode()


def test_the_switch_on_the_own_page_chooses_russian_over_the_browser(as_alice: Client) -> None:
    page = as_alice.get("/me/", HTTP_ACCEPT_LANGUAGE="en-US")
    assert 'action="/me/language/"' in page.content.decode()
    switched = as_alice.post("/me/language/", {"language": "ru", "next": "/me/"})
    assert switched.status_code == 302 and switched["Location"] == "/me/"
    again = as_alice.get("/me/", HTTP_ACCEPT_LANGUAGE="en-US").content.decode()
    assert "Моя учётная запись" in again and '<option value="ru" selected>' in again
    as_alice.get("/me/language/", {"language": "en"})  # a GET changes nothing
    assert "Моя учётная запись" in as_alice.get("/me/").content.decode()


@pytest.mark.parametrize(
    ("kind", "change", "detail", "actor", "english", "russian"),
    [
        ("domain", "stopped", "destroyed", None,
         "web1 was forced off outside vmdash.", "ВМ web1 выключена принудительно вне vmdash."),
        ("domain", "rebooted", "", "alice",
         "web1 was rebooted by alice.", "ВМ web1 перезагружена пользователем alice."),
        ("domain", "crashed", "", None, "web1 crashed.", "ВМ web1 аварийно завершилась."),
        ("network", "started", "", None,
         "Network web1 was started outside vmdash.", "Сеть web1 запущена вне vmdash."),
        ("pool", "stopped", "", "bob",
         "Storage pool web1 was stopped by bob.", "Пул web1 остановлен пользователем bob."),
    ],
)  # fmt: skip
def test_a_toast_is_a_sentence_of_the_page_language(
    kind: str, change: str, detail: str, actor: str | None, english: str, russian: str
) -> None:
    """The verb agrees with the Russian noun: the VM and the network are
    feminine, the pool masculine."""
    from vmdash.live import toasts

    message: dict[str, object] = {
        "kind": kind, "change": change, "detail": detail, "name": "web1", "host": "lab",
    }  # fmt: skip
    with translation.override("en"):
        assert toasts.text(message, actor) == english  # type: ignore[arg-type]
    with translation.override("ru"):
        assert toasts.text(message, actor) == russian  # type: ignore[arg-type]
