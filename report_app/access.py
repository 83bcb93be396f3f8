"""Who may act: "Retry failed items" writes to Codat, so it needs a signed-in person.

Two ways to sign in, in this order:
- Streamlit's OIDC login (`st.login`) when `[auth]` is set in `.streamlit/secrets.toml`;
- else an operator token: the person types the value of $CODAT_EXPENSES_OPERATOR_TOKEN (set
  where the report is started). It is compared in constant time, never shown, logged or kept:
  the form clears it and the session keeps only "signed in".
With neither configured nobody can act; reading stays open (the report listens on loopback
unless started with --host).
"""

from __future__ import annotations

import hmac
import os

import streamlit as st

from destination_codat_expenses.cli.env import OPERATOR_TOKEN_ENV

__all__ = ["OPERATOR_TOKEN_ENV"]  # tests and the demo name it through here or cli/env.py

SIGNED_IN = "operator_signed_in"
HOW_TO_ENABLE = (
    "Retrying is off because nobody can sign in to this report. To turn it on, configure "
    "OpenID Connect sign-in (an `[auth]` section in `.streamlit/secrets.toml`) or start the "
    f"report with ${OPERATOR_TOKEN_ENV} set, then sign in from the sidebar (see docs/report.md)."
)


def operator_token() -> str:
    return os.environ.get(OPERATOR_TOKEN_ENV, "").strip()


def token_matches(given: str, expected: str) -> bool:
    """Constant-time comparison; an unset token matches nothing."""
    if not expected or not given:
        return False
    return hmac.compare_digest(given.strip().encode(), expected.encode())


def oidc_configured() -> bool:
    try:
        return "auth" in st.secrets
    except Exception:  # noqa: BLE001 - no secrets file at all is "not configured"
        return False


def can_sign_in() -> bool:
    return oidc_configured() or bool(operator_token())


def signed_in() -> bool:
    if oidc_configured():
        return bool(getattr(st.user, "is_logged_in", False))
    return bool(operator_token()) and st.session_state.get(SIGNED_IN) is True


def refusal() -> str | None:
    """Why acting is refused now, in one sentence for the page; None when allowed."""
    if not can_sign_in():
        return HOW_TO_ENABLE
    if not signed_in():
        return "Sign in (in the sidebar) to retry failed items: retrying writes to Codat."
    return None


def sign_in_panel() -> None:
    """The sidebar's sign-in / sign-out, on every page."""
    box = st.sidebar.container(border=True)
    if oidc_configured():
        oidc_panel(box)
    elif operator_token():
        token_panel(box)
    else:
        box.caption("Read-only: signing in is not set up, so retrying is off.")


def oidc_panel(box) -> None:
    if getattr(st.user, "is_logged_in", False):
        who = st.user.get("name") or st.user.get("email") or "signed in"
        box.caption(f"Signed in as {who}")
        if box.button("Sign out", key="sign_out"):
            st.logout()
    elif box.button("Sign in", icon=":material/login:", key="sign_in"):
        st.login()


def token_panel(box) -> None:
    if st.session_state.get(SIGNED_IN) is True:
        box.caption("Signed in as operator")
        if box.button("Sign out", key="sign_out"):
            st.session_state[SIGNED_IN] = False
            st.rerun()
        return
    with box.form("sign_in_form", clear_on_submit=True, border=False):
        given = st.text_input("Operator token", type="password", key="operator_token_input")
        pressed = st.form_submit_button("Sign in", icon=":material/login:")
    if pressed:
        ok = token_matches(given, operator_token())
        st.session_state[SIGNED_IN] = ok
        if not ok:
            box.error("That is not the operator token.")
        else:
            st.rerun()
