"""Codat's Sync for Expenses sync status codes and what each means (docs: "Monitor sync
status"). One table for the whole product: the report, the CLI and the demo read it."""

from __future__ import annotations

STATUS_MEANING = {
    1000: "In progress",
    1010: "In progress (long running)",
    2000: "Success (Data written)",
    2040: "Success (No data written)",
    4000: "Configuration error",
    4040: "Company deleted/de-authorized",
    4220: "Company deleted/de-authorized",
    4260: "Accounting software billing expiry",
    5000: "Generic server error",
    5080: "Duplication protection",
    5120: "Data processing error",
    5130: "Data write error",
}
IN_PROGRESS = (1000, 1010)
SUCCESS = (2000, 2040)

# This product's own marker, not one of Codat's sync codes (it is an HTTP status, three digits):
# Codat answered 404 for the sync (no such sync for that company), so `status refresh` recorded
# it as final and stops asking. The API's own status replaces it if Codat ever knows the sync.
NOT_FOUND_AT_CODAT = 404
NOT_FOUND_AT_CODAT_TEXT = "NotFoundAtCodat"
OWN_STATUS_MEANING = {NOT_FOUND_AT_CODAT: "Not found at Codat"}
