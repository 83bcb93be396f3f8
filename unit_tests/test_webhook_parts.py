"""The receiver's pure parts: the verifier, the payload reader, the spool, and its docs."""

from __future__ import annotations

import argparse
import base64
import json
from datetime import UTC, datetime
from pathlib import Path

import pytest
from standardwebhooks import Webhook

from destination_codat_expenses.cli.env import KEY_ENV
from destination_codat_expenses.cli.env import WEBHOOK_SECRET_ENV as SECRET_ENV
from destination_codat_expenses.cli.webhooks import add_webhook_commands, webhook_secret
from destination_codat_expenses.errors import WebhookVerificationError
from destination_codat_expenses.webhooks.payloads import interpret
from destination_codat_expenses.webhooks.receiver import MAX_BODY_BYTES, WEBHOOK_PATH
from destination_codat_expenses.webhooks.signing import signing_keys, verify
from destination_codat_expenses.webhooks.spool import HeldEvent, Spool

SECRET = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
KEYS = signing_keys(SECRET)
VECTOR = {
    "webhook-id": "msg_p5jXN8AQM9LWM0D4loKWxJek",
    "webhook-timestamp": "1614265330",
    "webhook-signature": "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE=",
}
BODY = b'{"test": 2432232314}'
DOCS = Path(__file__).resolve().parent.parent / "docs" / "webhooks.md"


# -- verify ------------------------------------------------------------------------------------
def test_docs_vector_verifies_at_its_own_time():
    assert verify(KEYS, VECTOR, BODY, 1614265330).webhook_id == VECTOR["webhook-id"]


@pytest.mark.parametrize("offset,ok", [(300, True), (301, False), (-300, True), (-301, False)])
def test_tolerance_is_five_minutes_both_ways(offset, ok):
    if ok:
        verify(KEYS, VECTOR, BODY, 1614265330 + offset)
    else:
        with pytest.raises(WebhookVerificationError):
            verify(KEYS, VECTOR, BODY, 1614265330 + offset)


def test_agrees_with_the_standardwebhooks_signer_on_raw_bytes():
    moment = datetime(2024, 9, 1, tzinfo=UTC)
    body = '{"caf\u00e9": "\u00fc"}'
    signature = Webhook(SECRET).sign("msg_1", moment, body)
    headers = {"Webhook-Id": "msg_1", "Webhook-Timestamp": "1725148800"}
    headers["Webhook-Signature"] = signature
    assert verify(KEYS, headers, body.encode(), moment.timestamp()).timestamp == 1725148800


def test_secret_without_prefix_and_several_secrets_are_read():
    raw = SECRET.removeprefix("whsec_")
    assert signing_keys(raw) == KEYS
    assert len(signing_keys(f"{SECRET}  whsec_{base64.b64encode(b'k' * 32).decode()}")) == 2


@pytest.mark.parametrize("secret", ["", "   ", "whsec_", "whsec_!!!!", "whsec_c2hvcnQ="])
def test_bad_secrets_are_refused_without_being_echoed(secret):
    with pytest.raises(ValueError) as refused:  # the command names where the secret came from
        webhook_secret({SECRET_ENV: secret})
    assert SECRET_ENV in str(refused.value)
    value = secret.strip().removeprefix("whsec_")
    assert not value or value not in str(refused.value)
    with pytest.raises(ValueError) as direct:  # the receiver's own check, without the command
        signing_keys(secret)
    assert not value or value not in str(direct.value)


# -- interpret ---------------------------------------------------------------------------------
def current(event_type: str, items: list | None = None, **payload) -> bytes:
    body = {"syncId": "s1", "referenceCompany": {"id": "c1"}, **payload}
    if items is not None:
        body["transactions"] = items
    return json.dumps({"eventType": event_type, "payload": body}).encode()


@pytest.mark.parametrize(
    "event_type,succeeded",
    [("expenses.sync.successful", True), ("expenses.sync.unsuccessful", False)],
)
def test_a_sync_event_names_its_sync_company_and_reported_outcome(event_type, succeeded):
    items = [{"id": "t1", "status": "PushError", "errorMessage": "Closed period"}]
    event = interpret(current(event_type, items))
    assert event.applicable
    assert (event.sync_id, event.company_id, event.succeeded) == ("s1", "c1", succeeded)
    assert json.loads(event.payload_json)["payload"]["transactions"] == items  # kept whole


def test_an_event_carries_no_status_code_and_no_item_outcomes():
    """A webhook triggers, the API decides: nothing here can become a status or an item."""
    event = interpret(current("expenses.sync.unsuccessful", [{"id": "t1", "status": "Failed"}]))
    assert not hasattr(event, "status") and not hasattr(event, "items")


def test_legacy_shapes_map_to_the_same_outcomes():
    failed = {
        "RuleType": "Sync Failed",
        "CompanyId": "c1",
        "Data": {"syncId": "s1"},
        "Message": "Sync s1 has failed at step Pushing.",
    }
    event = interpret(json.dumps(failed).encode())
    assert (event.succeeded, event.sync_id, event.company_id) == (False, "s1", "c1")
    completed = interpret(json.dumps({**failed, "RuleType": "Sync Completed"}).encode())
    assert completed.succeeded is True


@pytest.mark.parametrize(
    "body",
    [b"\xff\xfe", b"not json", b"[" * 100_000, b'{"a": NaN}', b"[]", b'{"eventType": 5}'],
    ids=["not utf-8", "text", "deep nesting", "NaN", "array", "odd type"],
)
def test_anything_else_is_kept_never_raised(body):
    event = interpret(body)
    assert not event.applicable
    json.loads(event.payload_json)  # always valid JSON for the store's JSON column


# -- the spool ---------------------------------------------------------------------------------
def test_spool_round_trip_and_release(tmp_path):
    spool = Spool(tmp_path / "spool")
    held = [HeldEvent("msg_1", b"\x00binary\xff", datetime(2024, 9, 1, tzinfo=UTC))]
    path = spool.hold(held)
    (tmp_path / "spool" / ".half-written.jsonl.partial").write_text("{")

    assert spool.load() == [(path, held)]
    spool.release([path])
    assert spool.load() == [] and spool.files() == []


def test_unreadable_spool_file_is_set_aside(tmp_path):
    spool = Spool(tmp_path)
    (tmp_path / "00-bad.jsonl").write_text("{not json\n")
    assert spool.load() == []
    assert (tmp_path / "00-bad.unreadable").exists()


# -- docs ----------------------------------------------------------------------------------------
def test_docs_cover_every_flag_status_and_setting():
    parser = argparse.ArgumentParser()
    add_webhook_commands(parser.add_subparsers())
    serve = parser._subparsers._group_actions[0].choices["webhooks"]
    serve = serve._subparsers._group_actions[0].choices["serve"]
    flags = [
        o for a in serve._actions for o in a.option_strings if o.startswith("--") and o != "--help"
    ]
    text = DOCS.read_text(encoding="utf-8")
    needed = [*flags, SECRET_ENV, KEY_ENV, WEBHOOK_PATH, "/healthz", "401", "413", "503", "202"]
    needed += [str(MAX_BODY_BYTES // 1024) + " KiB", "30 days", "expenses.sync.successful"]
    missing = [word for word in needed if word not in text]
    assert not missing, f"docs/webhooks.md does not mention {missing}"
