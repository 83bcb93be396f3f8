"""One sync: times, platforms, status with plain notes, raw messages, retry lineage, push items,
config at push time, and "Retry failed items". Reached by a row click or `?sync=<id>`."""

from __future__ import annotations

import json

import pandas as pd
import streamlit as st

from report_app import actions, explain, queries, ui

ITEM_COLUMNS = ["data_type", "record_id", "transaction_id", "status", "reason", "message"]


def pick_sync(path: str) -> str | None:
    """The sync in the URL (`?sync=`), or one picked from the sidebar search."""
    return ui.pick_from_url(
        "sync",
        lambda text: queries.load_sync_matches(path, text)["sync_id"].tolist(),
        ("Find a sync", "sync or company id, or part of one"),
        ("Sync", "Choose a sync"),
    )


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
    started, ended, took, items, failed = st.columns(5)
    # a sync only a webhook named has no known start: the store shows when it first saw it
    started.metric(
        "Started (UTC)" if sync["start_known"] else "First seen (UTC)",
        ui.fmt_time(sync["initiated_at"]),
    )
    ended.metric("Finished (UTC)", ui.fmt_time(sync["completed_at"]))
    took.metric(
        "Duration" if not pd.isna(sync["completed_at"]) else "Running for",
        ui.fmt_duration(sync["duration_s"]),
    )
    items.metric("Items", ui.fmt_count(sync["item_count"]))
    failed.metric("Failed items", ui.fmt_count(sync["failed_count"]))


def facts(sync: dict) -> None:
    rows = {
        "Company": sync["company_id"],
        "Platforms": f"{sync['source_platform'] or '?'} → {sync['target_platform'] or '?'}",
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
    st.dataframe(
        pd.DataFrame({"field": list(rows), "value": list(rows.values())}),
        hide_index=True,
        key="facts",
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
    ready = failed > 0 and actions.has_credentials()
    pressed = st.button(
        "Retry failed items",
        type="primary",
        disabled=not ready,
        icon=":material/replay:",
        key="retry",
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
    else:
        st.caption(f"{failed} failed item(s) will be pushed again with the same ids.")
    if pressed and ready:
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
    st.dataframe(
        family[["relation", "sync_id", "initiated_at", "status", "item_count", "failed_count"]],
        hide_index=True,
        key="lineage",
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
        "Item status", queries.load_push_statuses(path, sync_id), key="item_status"
    )
    items = queries.load_push_items(path, sync_id, search, tuple(statuses))
    items["reason"] = items["message"].map(explain.short_reason)
    st.caption(f"{len(items):,} item(s). Click one to follow that expense across syncs.")
    event = st.dataframe(
        items,
        column_order=[*ITEM_COLUMNS, "amount", "currency", "source_key"],
        hide_index=True,
        key="items",
        on_select="rerun",
        selection_mode="single-row",
    )
    row = ui.selected_row(event, items)
    if row is not None:
        ui.transaction_link(row["transaction_id"])


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
header(sync)
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
