"""One sync: times, platforms, status with plain notes, raw messages, retry lineage, push items,
config at push time, and "Retry failed items". Reached by a row click or `?sync=<id>`."""

from __future__ import annotations

import json

import pandas as pd
import streamlit as st

from report_app import access, actions, explain, queries, ui

OPEN_SYNC_REFRESH_S = 5
TEXT = st.column_config.TextColumn
# narrow keys and a wide message: at 1280 px Codat's message gets most of the row
ITEM_COLUMNS = {
    "status": TEXT("Item status", width=115),
    "transaction_id": TEXT("Transaction id", width=115),
    "amount_shown": TEXT("Amount", alignment="right", width=110),
    "reason": TEXT("Reason", width=170),
    "message": TEXT("Message", width=420),
    "data_type": TEXT("Written as", width="small"),
    "record_id": TEXT("Record in the books", width="small"),
    "source_key": TEXT("Source record", width="small"),
}


def pick_sync(path: str) -> str | None:
    """The sync in the URL (`?sync=`), or one picked from the sidebar search."""
    return ui.pick_from_url(
        "sync",
        lambda text: sync_choices(queries.load_sync_matches(path, text)),
        ("Find a sync", "sync id, company id or company name, or part of one"),
        ("Sync", "Choose a sync"),
    )


def sync_choices(matches: pd.DataFrame) -> dict[str, str]:
    """Each sync with its company's name, accounting software, status and start, as the picker
    shows ("—" for a company whose name is not known)."""
    return {
        row.sync_id: f"{row.sync_id} · {ui.company(row.company_name, row.company_id)}"
        f"{f' · {row.target_platform}' if isinstance(row.target_platform, str) else ''} · "
        f"{explain.status_label(row.status_code, row.outcome)} · {ui.fmt_time(row.initiated_at)}"
        for row in matches.itertuples()
    }


SOURCES = {
    "codat": "Codat's API",
    "webhook": "a webhook's report, not yet confirmed with Codat",
    "product": "codat-expenses (Codat answered 404)",
}


def header(sync: dict) -> None:
    status = explain.status_label(sync["status_code"], sync["outcome"])
    st.title(f"Sync {ui.md(sync['sync_id'])}")
    unconfirmed = sync["outcome"] == "unconfirmed"
    st.subheader(status if unconfirmed else f"{status} · {sync['outcome']}")
    if sync["attention"]:
        st.warning(f"This sync is {sync['attention']}.", icon=":material/hourglass_top:")
    # two wide tiles for the times (never cut at 1280 px), three for the rest
    started, ended = st.columns(2)
    # a sync only a webhook named has no known start: the store shows when it first saw it
    started.metric(
        "Started (UTC)" if sync["start_known"] else "First seen (UTC)",
        ui.fmt_time(sync["initiated_at"]).removesuffix(" UTC"),
        border=True,
    )
    ended.metric(
        "Finished (UTC)", ui.fmt_time(sync["completed_at"]).removesuffix(" UTC"), border=True
    )
    took, items, failed = st.columns(3)
    took.metric(
        "Duration" if not pd.isna(sync["completed_at"]) else "Running for",
        ui.fmt_duration(sync["duration_s"]),
        border=True,
    )
    items.metric("Items", ui.fmt_count(sync["item_count"]), border=True)
    failed.metric("Failed items", ui.fmt_count(sync["failed_count"]), border=True)


def facts(sync: dict) -> None:
    rows = {
        "Company": ui.company(sync["company_name"], sync["company_id"]),
        "Platforms": ui.platforms(sync["source_platform"], sync["target_platform"]),
        "Status code and text": f"{explain.as_code(sync['status_code']) or '—'} "
        f"{sync['status_text'] or ''}",
        "Status from": SOURCES.get(sync["status_source"], "—"),
        "Webhook reported": reported(sync),
        "Expenses dated": f"{ui.fmt_date(sync['expenses_from'])} to "
        f"{ui.fmt_date(sync['expenses_to'])}",
        "Flow": sync["flow"] or "—",
        "Run": sync["run_id"] or "—",
        "Retry of": sync["retry_of"] or "—",
    }
    ui.show_grid(
        pd.DataFrame({"field": list(rows), "value": [str(v) for v in rows.values()]}),
        {
            "field": st.column_config.TextColumn("Fact", width="small"),
            "value": st.column_config.TextColumn("Value", width="large"),
        },
        key="facts",
        height=ui.grid_height(len(rows)),
    )


def reported(sync: dict) -> str:
    if not isinstance(sync["reported_outcome"], str):
        return "—"
    return f"{sync['reported_outcome']} at {ui.fmt_time(sync['reported_at'])}"


def notes(sync: dict, items: pd.DataFrame) -> None:
    code = sync["status_code"]
    messages = [sync["error_message"], sync["exception_message"], *items["message"].tolist()]
    st.subheader("What happened")
    for note in explain.notes_for_sync(code, messages, sync["outcome"]):
        ui.show_note(note, failed=sync["outcome"] == "failed")
    source = sync["status_source"]
    ui.show_raw(explain.source_label("Error message", source), sync["error_message"])
    ui.show_raw(explain.source_label("Exception message", source), sync["exception_message"])


def retry_panel(path: str, sync: dict) -> None:
    sync_id = sync["sync_id"]
    st.subheader("Retry")
    last = st.session_state.get("last_retry")
    if last and last["sync_id"] == sync_id:
        retry_result(path, sync_id, last["outcome"])
    failed = queries.load_retryable_count(path, sync_id)
    refused = access.refusal()
    ready = failed > 0 and actions.has_credentials() and refused is None
    pressed = st.button(
        "Retry failed items",
        type="primary",
        disabled=not ready,
        icon=":material/replay:",
        key="retry",
        help=refused,
    )
    if not failed:
        st.caption(nothing_to_retry(sync))
    elif not actions.has_credentials():
        st.info(
            f"{failed} failed item(s) could be pushed again, but the report has no Codat API key "
            f"(${actions.KEY_ENV} is not set), so it cannot call Codat. Run this where the key is "
            "set:",
            icon=":material/key_off:",
        )
        st.code(actions.retry_command(path, sync_id), language="bash")
    elif refused:
        st.info(f"{failed} failed item(s) could be pushed again. {refused}", icon=":material/lock:")
    else:
        st.caption(f"{failed} failed item(s) will be pushed again with the same ids.")
    if pressed and ready and access.signed_in():  # checked again when it is acted on
        run_retry(path, sync_id)


def nothing_to_retry(sync: dict) -> str:
    """Why the button is off, true to the sync's state (a running sync has no outcomes yet)."""
    if sync["outcome"] in ("in progress", "unconfirmed"):
        return "Nothing to retry yet: Codat has not given this sync's final status."
    if pd.isna(sync["item_count"]) or not sync["item_count"]:
        return "No items are recorded for this sync: nothing to retry."
    return "No failed items to retry: every item completed, or a later sync completed it."


def run_retry(path: str, sync_id: str) -> None:
    with st.status("Retrying failed items…", expanded=True) as status:
        outcome = actions.retry_failed_items(path, sync_id, status.text)
        state = "complete" if outcome.done else "error"
        status.update(label="Retry finished" if outcome.done else "Retry not done", state=state)
    queries.forget_cached()
    st.session_state["last_retry"] = {"sync_id": sync_id, "outcome": outcome}
    st.rerun()


def retry_result(path: str, sync_id: str, outcome: actions.RetryOutcome) -> None:
    if not outcome.done:
        st.warning(ui.md(outcome.message), icon=":material/error:")
        with st.expander("What the retry printed"):
            st.code("\n".join(outcome.output) or "(nothing)", language=None)
        return
    if not outcome.succeeded:
        st.warning(ui.md(outcome.message), icon=":material/error:")
    new = queries.fetch_retries_since(path, sync_id, outcome.started_at)
    for row in new.itertuples():
        label = explain.code_label(row.status_code)
        said = st.success if outcome.succeeded else st.info
        said(f"Retried {row.item_count} item(s) as sync {ui.md(row.sync_id)}: {label}.")
        ui.sync_link(row.sync_id)
    if new.empty:
        st.success("Codat had already processed these items; nothing was pushed again.")
    if outcome.still_running:
        st.info("The new sync is still running; its status will update here when it ends.")


def lineage(path: str, sync_id: str) -> None:
    family = queries.load_lineage(path, sync_id)
    st.subheader("Retry lineage")
    if len(family) <= 1:
        st.caption("This sync is not a retry and has not been retried.")
        return
    family["relation"] = [
        relation(g, r) for g, r in zip(family["generation"], family["retry_of"], strict=True)
    ]
    family["status"] = [
        explain.status_label(c, o)
        for c, o in zip(family["status_code"], family["outcome"], strict=True)
    ]
    st.caption("Click a row to open that sync.")
    ui.clickable_grid(
        family,
        {
            "relation": st.column_config.TextColumn("Relation", width="small"),
            "sync_id": st.column_config.TextColumn("Sync id", width="medium"),
            "initiated_at": st.column_config.DatetimeColumn(
                "Started (UTC)", format="YYYY-MM-DD HH:mm:ss"
            ),
            "status": st.column_config.TextColumn("Status", width="medium"),
            "item_count": st.column_config.NumberColumn("Items", format="%d", width="small"),
            "failed_count": st.column_config.NumberColumn("Failed", format="%d", width="small"),
        },
        "lineage",
        ui.OPENS_SYNC,
    )
    for other in family.loc[family["sync_id"] != sync_id, "sync_id"].head(20):
        ui.sync_link(other)


def relation(generation: int, retry_of) -> str:
    if generation == 0:
        return "this sync"
    if generation < 0:
        return "earlier attempt" if retry_of else "original sync"
    return "retry of this sync" if generation == 1 else f"later retry ({generation} deep)"


def push_items_tab(path: str, sync_id: str) -> None:
    search = st.text_input(
        "Search items", key="item_search", placeholder="transaction id, record id or data type"
    )
    statuses = st.multiselect(
        "Item status",
        queries.load_push_statuses(path, sync_id),
        key="item_status",
        placeholder="All item statuses",
    )
    items = queries.load_push_items(path, sync_id, search, tuple(statuses))
    items["reason"] = items["message"].map(explain.short_reason)
    items = ui.with_money(items, "amount", "currency", "amount_shown")
    st.caption(
        f"{len(items):,} item(s), failed first. Click one to open that expense across syncs."
    )
    ui.clickable_grid(items, ITEM_COLUMNS, "items", ui.OPENS_TRANSACTION, height="auto")


def config_tab(sync: dict) -> None:
    snapshot = ui.parse_json(sync["config_snapshot"])
    if snapshot is None:
        st.info("No expense configuration was recorded with this sync.")
        return
    st.caption("The company's expense configuration when this sync was pushed.")
    st.json(snapshot)
    st.download_button(
        "Download config (JSON)",
        data=json.dumps(snapshot, indent=2, sort_keys=True),
        file_name=f"sync-{sync['sync_id']}-config.json",
        mime="application/json",
        icon=":material/download:",
        key="config_download",
    )


path = ui.store_path()
sync_id = pick_sync(path)
if not sync_id:
    st.title("Sync details")
    st.info("Choose a sync in the sidebar, or click one in the dashboard's history.")
    st.stop()
sync = queries.load_sync(path, sync_id)
if sync is None:
    st.title("Sync details")
    st.warning("That sync is not in the status store.")
    st.stop()


@st.fragment(run_every=OPEN_SYNC_REFRESH_S)
def follow_open_sync(path: str, sync_id: str) -> None:
    """An open sync is read again every few seconds; the page reruns when it changes."""
    seen = queries.fetch_open_syncs(path, sync_id)
    key = f"open_sync_seen:{sync_id}"
    before = st.session_state.get(key)
    st.session_state[key] = seen
    if before is not None and before != seen:
        queries.forget_cached()
        st.rerun(scope="app")
    st.caption(f"This sync is open: the page checks it every {OPEN_SYNC_REFRESH_S} seconds.")


header(sync)
if sync["outcome"] in ("in progress", "unconfirmed"):
    follow_open_sync(path, sync_id)
facts(sync)
all_items = queries.load_push_items(path, sync_id)
notes(sync, all_items)
retry_panel(path, sync)
lineage(path, sync_id)
items_tab, config = st.tabs([f"Push items ({len(all_items)})", "Config"])
with items_tab:
    push_items_tab(path, sync_id)
with config:
    config_tab(sync)
