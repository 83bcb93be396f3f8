"""Receipts: a record never chooses what the connector reads from its own disk. A receipt path is
only a name inside the operator's receipts_root, checked when the record is accepted and again
when the file is read; every other path is refused with the part and the reason."""

from __future__ import annotations

import base64
import os
import stat
from pathlib import Path

import pytest

from destination_codat_expenses import receipts
from destination_codat_expenses.config import Config
from destination_codat_expenses.errors import ConfigError, RecordError
from destination_codat_expenses.mapping import FieldNames, MappingSettings, map_record
from destination_codat_expenses.receipts import (
    MAX_RECEIPT_BYTES,
    Receipt,
    ReceiptProblem,
    read_receipt,
    resolve_receipt_path,
    why_unread,
)

PDF = b"%PDF-1.4\n% a receipt\n%%EOF\n"


@pytest.fixture
def root(tmp_path: Path) -> Path:
    folder = tmp_path / "receipts"
    (folder / "2024").mkdir(parents=True)
    (folder / "2024" / "taxi.pdf").write_bytes(PDF)
    return folder


def refusal(root, path) -> str:
    with pytest.raises(ReceiptProblem) as raised:
        resolve_receipt_path(root, path)
    assert raised.value.part == "path"
    return str(raised.value)


# -- the resolver ---------------------------------------------------------------------------------
def test_a_file_inside_the_root_resolves_to_its_real_path(root):
    found = resolve_receipt_path(root, "2024/taxi.pdf")
    assert found.path == (root / "2024" / "taxi.pdf").resolve() and found.size == len(PDF)


def test_without_a_root_no_path_is_read(root):
    assert "no receipts_root is configured" in refusal(None, "2024/taxi.pdf")


@pytest.mark.parametrize("path", ["/proc/self/environ", "/etc/passwd", str(Path.home())])
def test_absolute_paths_are_refused(root, path):
    assert "not absolute" in refusal(root, path)


@pytest.mark.parametrize("path", ["../secret.pdf", "2024/../../secret.pdf", "2024/.."])
def test_dot_dot_is_refused_even_when_it_would_stay_inside(root, path):
    (root.parent / "secret.pdf").write_bytes(PDF)
    assert "'..'" in refusal(root, path)


@pytest.mark.parametrize("target", ["/proc/self/environ", "/etc/passwd", "/dev/null", "outside"])
def test_a_symlink_out_of_the_root_is_refused(root, target):
    outside = root.parent / "outside"
    outside.write_bytes(PDF)
    (root / "link.pdf").symlink_to(outside if target == "outside" else target)
    assert "leads outside" in refusal(root, "link.pdf")


def test_a_symlinked_folder_out_of_the_root_is_refused(root):
    (root / "elsewhere").symlink_to("/etc")
    assert "leads outside" in refusal(root, "elsewhere/passwd")


def test_a_symlink_that_stays_inside_the_root_is_fine(root):
    (root / "latest.pdf").symlink_to(root / "2024" / "taxi.pdf")
    (root / "this-year").symlink_to("2024")
    assert resolve_receipt_path(root, "latest.pdf").path == (root / "2024" / "taxi.pdf")
    assert resolve_receipt_path(root, "this-year/taxi.pdf").size == len(PDF)


def test_kernel_file_systems_are_refused_even_as_the_root():
    assert "leads outside" in refusal("/proc", "self/environ")
    assert "leads outside" in refusal("/dev", "null")


def test_a_device_is_refused(root):
    try:
        os.mknod(root / "null", 0o600 | stat.S_IFCHR, os.makedev(1, 3))
    except PermissionError:
        pytest.skip("creating a device node needs CAP_MKNOD")
    assert "not a regular file" in refusal(root, "null")


def test_a_fifo_is_refused_without_blocking(root):
    os.mkfifo(root / "pipe.pdf")
    assert "not a regular file" in refusal(root, "pipe.pdf")


def test_a_directory_is_refused(root):
    assert "not a regular file" in refusal(root, "2024")


def test_missing_and_empty_files_are_refused(root):
    (root / "empty.pdf").touch()
    assert "names no file" in refusal(root, "gone.pdf")
    assert "empty file" in refusal(root, "empty.pdf")


def test_the_size_cap_is_inclusive(root):
    with (root / "big.pdf").open("wb") as big:
        big.truncate(MAX_RECEIPT_BYTES)  # sparse: no disk is used
    assert resolve_receipt_path(root, "big.pdf").size == MAX_RECEIPT_BYTES
    with (root / "huge.pdf").open("wb") as huge:
        huge.truncate(MAX_RECEIPT_BYTES + 1)
    assert "limited to 100 MiB" in refusal(root, "huge.pdf")


@pytest.mark.parametrize("path", ["", "   ", 7, None, ["a.pdf"], "a\x00.pdf"])
def test_a_path_that_is_not_a_file_name_is_refused(root, path):
    refusal(root, path)


def test_a_root_that_went_away_refuses_every_path(root, tmp_path):
    assert "no longer a folder" in refusal(tmp_path / "moved", "2024/taxi.pdf")


# -- reading at upload time -----------------------------------------------------------------------
def test_read_returns_the_file_and_inline_content(root):
    assert read_receipt(Receipt("taxi.pdf", path="2024/taxi.pdf"), root) == PDF
    inline = Receipt("taxi.pdf", content_base64=base64.b64encode(PDF).decode())
    assert read_receipt(inline, None) == PDF


def test_read_checks_again_a_file_replaced_by_a_symlink_after_acceptance(root):
    resolve_receipt_path(root, "2024/taxi.pdf")  # accepted
    (root / "2024" / "taxi.pdf").unlink()
    (root / "2024" / "taxi.pdf").symlink_to("/proc/self/environ")
    with pytest.raises(ReceiptProblem, match="leads outside"):
        read_receipt(Receipt("taxi.pdf", path="2024/taxi.pdf"), root)


def swap_after_check(monkeypatch, change):
    """Run `change(real path)` between the check and the open: the race a TOCTOU attack wins."""
    real_resolve = receipts.resolve_receipt_path

    def resolve_then_change(root, relative):
        checked = real_resolve(root, relative)
        change(checked.path)
        return checked

    monkeypatch.setattr(receipts, "resolve_receipt_path", resolve_then_change)


def test_read_refuses_a_file_swapped_between_check_and_open(root, monkeypatch):
    other = root.parent / "environ-copy"
    other.write_bytes(b"API_KEY=secret")
    swap_after_check(monkeypatch, lambda path: os.replace(other, path))
    with pytest.raises(ReceiptProblem, match="changed while it was being opened"):
        read_receipt(Receipt("taxi.pdf", path="2024/taxi.pdf"), root)


def test_read_refuses_a_symlink_swapped_in_between_check_and_open(root, monkeypatch):
    def to_symlink(path: Path) -> None:
        path.unlink()
        path.symlink_to("/etc/passwd")

    swap_after_check(monkeypatch, to_symlink)
    with pytest.raises(ReceiptProblem, match="changed while it was being opened"):
        read_receipt(Receipt("taxi.pdf", path="2024/taxi.pdf"), root)


def test_read_refuses_a_file_that_grew_past_the_cap_after_the_check(root, monkeypatch):
    def grow(path: Path) -> None:
        with path.open("r+b") as file:
            file.truncate(MAX_RECEIPT_BYTES + 1)

    swap_after_check(monkeypatch, grow)
    with pytest.raises(ReceiptProblem, match="limited to 100 MiB"):
        read_receipt(Receipt("taxi.pdf", path="2024/taxi.pdf"), root)


def test_read_refuses_a_bad_file_name_stored_by_an_older_version(root):
    with pytest.raises(ReceiptProblem) as raised:
        read_receipt(Receipt("../../x.pdf", path="2024/taxi.pdf"), root)
    assert raised.value.part == "fileName"
    assert why_unread(raised.value).startswith("receipt.fileName must be a plain file name")


# -- a record's receipt (mapping: shape only, no file touched) ------------------------------------
FLAT = MappingSettings()


def mapped_receipt(receipt, settings=FLAT, field="receipt"):
    record = {"id": "r-1", "date": "2024-05-02", "amount": "12.00", "currency": "GBP"}
    if settings.shape == "codat":
        record = {
            "id": "r-1",
            "type": "Payment",
            "issueDate": "2024-05-02",
            "currency": "GBP",
            "lines": [{"netAmount": "12.00"}],
        }
    return map_record({**record, field: receipt}, "s", settings).receipt


def refused_field(receipt, settings=FLAT, field="receipt") -> str:
    with pytest.raises(RecordError) as raised:
        mapped_receipt(receipt, settings, field)
    assert raised.value.record_key == "r-1"
    return raised.value.field


@pytest.mark.parametrize(
    "name",
    [
        "../../etc/cron.d/x",
        "a/b.pdf",
        "a\\b.pdf",
        'a".pdf',
        'x.pdf"; name="other',
        "a\r\nContent-Type: text/html\r\n\r\n.pdf",
        "tab\t.pdf",
        "\u202efdp.exe",
        "..",
        ".",
        "x" * 256,
        7,
    ],
)
def test_file_names_that_could_inject_into_a_multipart_upload_are_refused(name):
    assert refused_field({"fileName": name, "content": "JVBERi0="}) == "receipt.fileName"


def test_ordinary_file_names_are_kept():
    name = "Café receipt (1) – May.pdf"
    assert mapped_receipt({"fileName": name, "content": "JVBERi0="}).file_name == name


def test_content_must_be_base64_and_path_a_string():
    assert refused_field({"fileName": "a.png", "content": "not base64!"}) == "receipt.content"
    assert refused_field({"fileName": "a.png", "path": 7}) == "receipt.path"
    assert refused_field({"fileName": "a.png"}) == "receipt"


def test_the_field_is_named_as_the_record_names_it():
    settings = MappingSettings(fields=FieldNames(receipt="attachment"))
    bad = {"fileName": "a/b.pdf", "content": "JVBERi0="}
    assert refused_field(bad, settings, "attachment") == "attachment.fileName"
    codat = MappingSettings(shape="codat")
    assert refused_field({"fileName": "a.png", "path": ""}, codat) == "receipt.path"


def test_mapping_keeps_a_path_as_given_without_touching_the_disk():
    receipt = mapped_receipt({"fileName": "environ.pdf", "path": "/proc/self/environ"})
    assert receipt == Receipt("environ.pdf", path="/proc/self/environ")  # pipeline.accept decides


# -- the setting ----------------------------------------------------------------------------------
def config(**settings) -> Config:
    return Config.from_mapping(
        {"api_key": "k", "company_id": "11111111-1111-4111-8111-111111111111", **settings}
    )


def test_receipts_root_is_optional_and_resolved(root):
    assert config().receipts_root is None and config(receipts_root="  ").receipts_root is None
    (root.parent / "link").symlink_to(root)
    assert config(receipts_root=str(root.parent / "link")).receipts_root == str(root.resolve())


@pytest.mark.parametrize(
    "value", ["missing", "file", "/", "/proc", "/proc/self", "/dev", "/sys/kernel", 7]
)
def test_receipts_root_must_be_an_existing_ordinary_folder(root, value):
    (root.parent / "file").write_bytes(PDF)
    if value in ("missing", "file"):
        value = str(root.parent / value)
    with pytest.raises(ConfigError) as raised:
        config(receipts_root=value)
    assert raised.value.setting == "receipts_root"
