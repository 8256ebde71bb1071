"""The suite's guard against tests that write into the checkout can fail."""

from conftest import checkout_listing, listing_changes


def test_listing_sees_a_new_file_a_rewritten_file_and_ignores_caches(tmp_path):
    (tmp_path / "kept.txt").write_text("a")
    (tmp_path / "rewritten.txt").write_text("b")
    (tmp_path / "__pycache__").mkdir()
    before = checkout_listing(tmp_path)
    (tmp_path / "runs" / "vae-digits").mkdir(parents=True)
    (tmp_path / "runs" / "vae-digits" / "metrics.json").write_text("{}")
    (tmp_path / "rewritten.txt").write_text("bb")
    (tmp_path / "__pycache__" / "x.pyc").write_bytes(b"")
    assert listing_changes(before, checkout_listing(tmp_path)) == [
        "rewritten.txt",
        "runs/vae-digits/metrics.json",
    ]


def test_every_test_starts_in_its_own_temporary_folder(tmp_path):
    import os

    assert os.getcwd() == str(tmp_path)
