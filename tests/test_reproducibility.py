"""Gathering the chapters' claims for the reproducibility chapter (`report.gather_claims`)."""

import json
import os

import numpy as np

from cbmir_tf.report import CLAIM_COLUMNS, claim, gather_claims, save_claims


def _chapter(generated, name, paper, profile, better_by=0.2, n=30):
    """A chapter folder with its provenance, then its claims (written after it, as a chapter does)."""
    out = generated / name
    out.mkdir(parents=True)
    (out / "provenance.json").write_text(json.dumps({"parameters": {"profile": profile}}))
    rng = np.random.default_rng(0)
    base = rng.random(n)
    rows = [claim(paper, "ours beats the baseline", "0.9 vs 0.8 (Table 1)", "AP@10 per query", "A", "B",
                  base + better_by, base),
            claim(paper, "lower error", "1.0 vs 2.0 (Table 2)", "first-hit error per query", "A", "B",
                  base, base + better_by, higher_is_better=False)]
    save_claims(rows, out)
    return out


def test_gather_claims_reads_every_chapter_in_order_and_keeps_the_paper_as_text(tmp_path):
    _chapter(tmp_path, "paper003_x", "003", "smoke")
    _chapter(tmp_path, "paper000_y", "000", "smoke", better_by=-0.2)
    (tmp_path / "open_benchmark").mkdir()  # a chapter without claims
    table = gather_claims(tmp_path)
    assert list(table.columns) == ["chapter", *CLAIM_COLUMNS]
    assert list(table["chapter"]) == ["paper000_y"] * 2 + ["paper003_x"] * 2
    assert list(table["paper"]) == ["000", "000", "003", "003"]
    assert list(table["verdict"]) == ["contradicted", "contradicted", "supported", "supported"]
    assert np.allclose(table["difference"], [-0.2, -0.2, 0.2, 0.2])
    assert (table["ci_low"] <= table["difference"]).all() and (table["difference"] <= table["ci_high"]).all()
    assert (table["n"] == 30).all()


def test_gather_claims_keeps_only_this_profiles_build(tmp_path):
    _chapter(tmp_path, "paper000_a", "000", "smoke")
    _chapter(tmp_path, "paper001_b", "001", "cpu")  # another profile's results
    stale = _chapter(tmp_path, "paper002_c", "002", "smoke")
    claims = stale / "claims.csv"
    os.utime(claims, (claims.stat().st_mtime - 60, claims.stat().st_mtime - 60))  # older than provenance
    assert set(gather_claims(tmp_path)["chapter"]) == {"paper000_a", "paper001_b", "paper002_c"}
    assert set(gather_claims(tmp_path, profile="smoke")["chapter"]) == {"paper000_a"}


def test_gather_claims_skips_a_claims_file_that_save_claims_did_not_write(tmp_path):
    _chapter(tmp_path, "paper000_a", "000", "smoke")
    shown = _chapter(tmp_path, "paper001_b", "001", "smoke")
    (shown / "claims.csv").write_text("claim,verdict\nA beats B,supported\n")  # a display table
    assert set(gather_claims(tmp_path, profile="smoke")["chapter"]) == {"paper000_a"}


def test_gather_claims_of_an_empty_build_is_an_empty_table(tmp_path):
    table = gather_claims(tmp_path / "nothing", profile="smoke")
    assert table.empty and list(table.columns) == ["chapter", *CLAIM_COLUMNS]


def test_forest_plot_draws_a_row_per_claim_and_a_log_axis_only_for_wide_ranges(tmp_path):
    import matplotlib

    matplotlib.use("Agg")
    from cbmir_tf import plots

    _chapter(tmp_path, "paper000_a", "000", "smoke", better_by=0.01)
    _chapter(tmp_path, "paper003_b", "003", "smoke", better_by=0.5)
    table = gather_claims(tmp_path).assign(label=lambda t: t["paper"] + " " + t["claim"])
    assert len(plots.forest_plot(table).axes[0].get_yticks()) == 4
    assert plots.forest_plot(table).axes[0].get_xscale() == "symlog"
    assert plots.forest_plot(table.iloc[:2]).axes[0].get_xscale() == "linear"
    assert not plots.forest_plot(table.iloc[:0]).axes[0].axison  # "no claims in this build"
