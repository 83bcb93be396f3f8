"""scrub: every form a secret travels in, in any letter case, and nothing else."""

from __future__ import annotations

import base64

from destination_codat_expenses.redaction import (
    REDACTED,
    api_key_forms,
    scrub,
    webhook_secret_forms,
)

KEY = "canary-Key+/9"
KEY_B64 = base64.b64encode(KEY.encode()).decode()


def test_api_key_forms_are_the_key_and_its_base64():
    assert api_key_forms(KEY) == (KEY, KEY_B64)


def test_every_form_and_case_of_the_key_is_replaced():
    text = (
        f"Authorization: Basic {KEY_B64}; authorization: basic {KEY_B64.lower()}; "
        f"raw {KEY}, shouted {KEY.upper()}"
    )
    scrubbed = scrub(text, api_key_forms(KEY))
    assert scrubbed == (
        f"Authorization: Basic {REDACTED}; authorization: basic {REDACTED}; "
        f"raw {REDACTED}, shouted {REDACTED}"
    )


def test_text_without_a_secret_is_returned_as_it_was():
    text = "No sync was found with ID 7e1c (regex chars .*+? stay literal)"
    assert scrub(text, api_key_forms(KEY)) == text
    assert scrub("", api_key_forms(KEY)) == ""
    assert scrub("anything", ()) == "anything"


def test_webhook_secret_forms_cover_each_rotating_secret_with_and_without_prefix():
    first = "whsec_" + base64.b64encode(b"first signing key 24 byte").decode()
    second = "whsec_" + base64.b64encode(b"second signing key 24 byt").decode()
    forms = webhook_secret_forms(f"{first} {second}")
    text = f"{first} and {second.removeprefix('whsec_').lower()}"
    assert scrub(text, forms) == f"{REDACTED} and {REDACTED}"
