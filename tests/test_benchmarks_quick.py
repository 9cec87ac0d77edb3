"""The --quick modes of benchmarks/paper_table.py, bucketing.py, sequences.py, ablation.py, short_series.py,
forecasting.py, epoch_budget.py, target_scaling.py and quantile_calibration.py run end to end
(in a subprocess, as a user runs them) and write results files with the expected rows."""
from __future__ import annotations

import csv
import os
import subprocess
import sys
from pathlib import Path

import numpy as np

REPO_ROOT = Path(__file__).resolve().parents[1]


def run_quick(script, out, data_dir, *extra, ok=True):
    env = dict(os.environ, QLTS_DATA=str(data_dir), MPLBACKEND="Agg")
    proc = subprocess.run([sys.executable, f"benchmarks/{script}", "--quick", "--out", str(out), *extra],
                          cwd=REPO_ROOT, env=env, capture_output=True, text=True, timeout=600)
    assert (proc.returncode == 0) == ok, proc.stderr[-3000:]
    return proc.stdout if ok else proc.stderr


def read_csv(path):
    with open(path, newline="") as fh:
        return list(csv.DictReader(fh))


def write_csv(path, rows):
    with open(path, "w", newline="") as fh:
        writer = csv.DictWriter(fh, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)


def check_markdown(path, script):
    text = path.read_text()
    assert f"Command: `python benchmarks/{script} --quick --out " in text  # the exact command is recorded
    assert "Environment: " in text
    return text


def test_paper_table_quick(tmp_path, shared_data_dir):
    run_quick("paper_table.py", tmp_path, shared_data_dir)
    text = check_markdown(tmp_path / "paper_table.md", "paper_table.py")
    assert (tmp_path / "paper_table.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    rows = {r["model"]: r for r in read_csv(tmp_path / "paper_table.csv")}
    assert set(rows) == {"LSTM", "GRU", "BiLSTM", "QL-LSTM"}
    for r in rows.values():
        assert r["max_len"] == "128" and r["seeds"] == "1" and r["epochs_run"] == "1"
        assert 0.0 <= float(r["accuracy_mean"]) <= 100.0
        assert float(r["median_epoch_s"]) > 0
    assert float(rows["LSTM"]["epoch_time_ratio_to_lstm"]) == 1.0
    # the counts come from the fitted networks: QL-LSTM 2H(d+H)+7H, LSTM 4H(d+H)+8H at d=H=32
    assert int(rows["QL-LSTM"]["recurrent_params"]) == 2 * 32 * 64 + 7 * 32
    assert int(rows["LSTM"]["recurrent_params"]) == 4 * 32 * 64 + 8 * 32
    assert int(rows["BiLSTM"]["recurrent_params"]) == 2 * int(rows["LSTM"]["recurrent_params"])
    assert "## Targets (issue 8)" in text and "not a test of the target" in text
    runs = read_csv(tmp_path / "paper_table_runs.csv")
    assert len(runs) == 4

    # a second invocation's seeds join the table: here a copy of the runs as seed 1, 10 points better
    first = tmp_path / "paper_table_runs.csv"
    second = tmp_path / "seed1_runs.csv"
    write_csv(second, [{**r, "seed": "1", "test_accuracy": str(float(r["test_accuracy"]) + 10)} for r in runs])
    merged = tmp_path / "merged"
    run_quick("paper_table.py", merged, shared_data_dir, "--add-runs", str(first), str(second), "--report-only")
    for r in read_csv(merged / "paper_table.csv"):
        assert r["seeds"] == "2"
        assert abs(float(r["accuracy_mean"]) - (float(rows[r["model"]]["accuracy_mean"]) + 5)) < 1e-6
    assert len(read_csv(merged / "paper_table_runs.csv")) == 8
    # the same seed twice (another run's LSTM baseline): counted once, from the first file, and listed
    clash = tmp_path / "clash_runs.csv"
    write_csv(clash, [{**r, "test_accuracy": str(float(r["test_accuracy"]) + 1)} for r in runs[:1]])
    run_quick("paper_table.py", merged, shared_data_dir, "--add-runs", str(first), str(clash), "--report-only")
    table = {r["model"]: r for r in read_csv(merged / "paper_table.csv")}
    assert all(r["seeds"] == "1" for r in table.values())
    repeated = runs[0]
    label = {"lstm": "LSTM", "gru": "GRU", "bilstm": "BiLSTM", "qllstm": "QL-LSTM"}[repeated["model"]]
    assert float(table[label]["accuracy_mean"]) == float(repeated["test_accuracy"])
    text = (merged / "paper_table.md").read_text()
    assert "Not counted above" in text and f"{float(repeated['test_accuracy']) + 1:.2f}%" in text
    # the runs file keeps the repeat, after the counted runs: joined alone it gives the same table
    assert len(read_csv(merged / "paper_table_runs.csv")) == len(runs) + 1
    rejoined = tmp_path / "rejoined"
    run_quick("paper_table.py", rejoined, shared_data_dir, "--add-runs", str(merged / "paper_table_runs.csv"),
              "--report-only")
    assert read_csv(rejoined / "paper_table.csv") == read_csv(merged / "paper_table.csv")
    assert "Not counted above" in (rejoined / "paper_table.md").read_text()
    # a mean on a rounding edge (88.06 and 88.11 average 88.085) reads the same in the table and the targets
    edge = [{**r, "test_accuracy": "88.06"} for r in runs], [{**r, "seed": "1", "test_accuracy": "88.11"} for r in runs]
    for path, rs in zip((tmp_path / "edge0.csv", tmp_path / "edge1.csv"), edge):
        write_csv(path, rs)
    run_quick("paper_table.py", merged, shared_data_dir, "--add-runs", str(tmp_path / "edge0.csv"),
              str(tmp_path / "edge1.csv"), "--report-only")
    text = (merged / "paper_table.md").read_text()
    ql_row = next(line for line in text.splitlines() if line.startswith("| 128 | QL-LSTM |"))
    shown = ql_row.split(" | ")[5].split(" ± ")[0]
    assert f"QL-LSTM accuracy >= 88.1%: **not met** ({shown}%)" in text
    # runs made with other settings are refused, by name
    err = run_quick("paper_table.py", merged, shared_data_dir, "--lr", "0.01", "--add-runs", str(first),
                    "--report-only", ok=False)
    assert "--add-runs" in err and "lr 0.002" in err and "lr 0.01" in err
    err = run_quick("paper_table.py", merged, shared_data_dir, "--bucket-by-length", "--add-runs", str(first),
                    "--report-only", ok=False)
    assert "--add-runs" in err and "batches bucketed by length" in err
    # a run at another document length joins as its own rows (a copy of the runs as 256 tokens)
    longer = tmp_path / "longer_runs.csv"
    write_csv(longer, [{**r, "max_len": "256", "test_accuracy": str(float(r["test_accuracy"]) + 3)} for r in runs])
    run_quick("paper_table.py", merged, shared_data_dir, "--add-runs", str(first), str(longer), "--report-only")
    by_len = {}
    for r in read_csv(merged / "paper_table.csv"):
        by_len.setdefault(r["max_len"], {})[r["model"]] = r
    assert sorted(by_len) == ["128", "256"]
    for label, r in by_len["256"].items():
        assert r["seeds"] == "1"
        assert abs(float(r["accuracy_mean"]) - (float(rows[label]["accuracy_mean"]) + 3)) < 1e-6
    text = (merged / "paper_table.md").read_text()
    assert "first 128, 256 tokens" in text and "At 256 tokens:" in text


def test_bucketing_quick(tmp_path, shared_data_dir):
    run_quick("bucketing.py", tmp_path, shared_data_dir)
    check_markdown(tmp_path / "bucketing.md", "bucketing.py")
    rows = {(r["model"], r["mode"]): r for r in read_csv(tmp_path / "bucketing.csv")}
    assert set(rows) == {(m, b) for m in ("LSTM", "QL-LSTM") for b in ("plain", "bucketed")}
    for (model, mode), r in rows.items():
        assert 0.0 <= float(r["accuracy_mean"]) <= 100.0 and float(r["median_epoch_s"]) > 0
        assert r["seeds"] == "1" and r["max_len"] == "128"
        assert float(r["steps_per_batch"]) <= 128
    for model in ("LSTM", "QL-LSTM"):
        assert float(rows[(model, "plain")]["epoch_time_ratio_to_plain"]) == 1.0
        assert float(rows[(model, "bucketed")]["steps_per_batch"]) < float(rows[(model, "plain")]["steps_per_batch"])


def test_sequences_quick(tmp_path, shared_data_dir):
    run_quick("sequences.py", tmp_path, shared_data_dir)
    text = check_markdown(tmp_path / "sequences.md", "sequences.py")
    rows = read_csv(tmp_path / "sequences.csv")
    aq = [r for r in rows if r["task"] == "air_quality"]
    st = [r for r in rows if r["task"] == "stocks"]
    assert sorted(r["model"] for r in aq) == sorted(r["model"] for r in st) == ["BiLSTM", "GRU", "LSTM", "QL-LSTM"]
    for r in aq:
        assert 0.0 <= float(r["value"]) <= 1.0 and 0.0 < float(r["baseline_persistence"]) <= 1.0
        assert int(r["recurrent_params"]) > 0
    for r in st:
        assert r["series"] == "AAPL" and float(r["value"]) > 0 and float(r["baseline_zero_mse"]) > 0
        # the rule: it beats the baselines only with a lower MSE than zero-return and a better direction
        # accuracy than both sign baselines; predictive needs that and a margin over 2 standard errors
        beats = (float(r["value"]) < float(r["baseline_zero_mse"])
                 and float(r["direction_accuracy"]) > float(r["baseline_last_sign_acc"])
                 and float(r["direction_accuracy"]) > float(r["baseline_majority_sign_acc"]))
        assert (r["beats_baselines"] == "True") == beats
        assert (r["predictive"] == "True") == (beats and float(r["direction_margin_se"]) > 2.0)
    assert "high-CO" in text and "predictive" in text


def test_ablation_quick(tmp_path, shared_data_dir):
    run_quick("ablation.py", tmp_path, shared_data_dir)
    text = check_markdown(tmp_path / "ablation.md", "ablation.py")
    rows = read_csv(tmp_path / "ablation.csv")
    for task in ("imdb", "adding", "etth1"):
        grid = sorted((int(r["skip"]), float(r["alpha"])) for r in rows if r["task"] == task)
        assert grid == sorted((k, a) for k in (1, 4, 16) for a in (0.0, 0.1, 0.3)), task
        assert len({r["settings"] for r in rows if r["task"] == task}) == 1
    assert "## Recommendation" in text

    # another invocation's seed joins the report: a copy of the imdb rows as seed 1, 10 points better
    imdb = [r for r in rows if r["task"] == "imdb"]
    second = tmp_path / "seed1.csv"
    write_csv(second, [{**r, "seed": "1", "value": str(float(r["value"]) + 10)} for r in imdb])
    merged = tmp_path / "merged"
    merged.mkdir()
    (merged / "ablation.md").write_text("old tables\n<!-- notes: text below this line is kept when the tables are "
                                        "regenerated -->\n## My analysis\n")
    run_quick("ablation.py", merged, shared_data_dir, "--add-runs", str(tmp_path / "ablation.csv"), str(second),
              "--report-only")
    text = (merged / "ablation.md").read_text()
    assert "old tables" not in text and text.endswith("-->\n## My analysis\n")  # hand notes kept, tables new
    assert "seeds [0, 1]" in text and text.count("seeds [0]") == 2  # imdb has two seeds, the others one
    k1 = [float(r["value"]) for r in imdb if (r["skip"], r["alpha"]) == ("1", "0.0")][0]
    assert f"| K=1 | {k1 + 5:.2f} ± 7.07 |" in text
    assert len(read_csv(merged / "ablation.csv")) == len(rows) + len(imdb)
    # before anything trains: rows run with other settings are refused, by task, and so is a seed run twice
    err = run_quick("ablation.py", merged, shared_data_dir, "--tasks", "imdb", "--seeds", "5", "--patience", "5",
                    "--add-runs", str(tmp_path / "ablation.csv"), ok=False)
    assert "--add-runs: the imdb rows were run with different settings" in err and "patience 5" in err
    err = run_quick("ablation.py", merged, shared_data_dir, "--tasks", "imdb", "--add-runs",
                    str(tmp_path / "ablation.csv"), ok=False)
    assert "--add-runs: imdb seed 0 K=1 a=0 appears twice" in err


def test_paper_table_match_params_sizes_qllstm_to_the_lstms_parameters():
    sys.path.insert(0, str(REPO_ROOT / "benchmarks"))
    try:
        import paper_table
    finally:
        sys.path.remove(str(REPO_ROOT / "benchmarks"))
    from qlts.nn import count_parameters

    args = paper_table.parse_args(["--hidden-size", "32", "--embedding-dim", "32", "--match-params"])
    rng = np.random.default_rng(0)
    ids, labels = rng.integers(1, 50, size=(8, 6)), np.array([0, 1] * 4)
    recurrent = {}
    for cell in ("lstm", "qllstm"):
        est = paper_table.make_estimator(cell, args, vocab_size=50, seed=0, device="cpu").fit(ids, labels)
        recurrent[cell] = count_parameters(est.module_.encoder.rnn)
    # 2H(d+H)+7H <= 4h(d+h)+8h at d=h=32: H=49 fits (8,281 <= 8,448), H=50 does not (8,550)
    assert recurrent["lstm"] == 8448 and recurrent["qllstm"] == 2 * 49 * 81 + 7 * 49
    assert "QL-LSTM hidden 49 (recurrent parameters matched" in paper_table.settings_text(args)
    plain = paper_table.parse_args(["--hidden-size", "32", "--embedding-dim", "32"])
    assert paper_table.make_estimator("qllstm", plain, 50, 0, "cpu").hidden_size == 32
    assert "matched" not in paper_table.settings_text(plain)


def test_short_series_quick(tmp_path, shared_data_dir):
    run_quick("short_series.py", tmp_path, shared_data_dir)
    text = check_markdown(tmp_path / "short_series.md", "short_series.py")
    rows = {r["budget"]: r for r in read_csv(tmp_path / "short_series.csv")}
    assert set(rows) == {"30 epochs", "default"} and "| synthetic monthly, 100 | 100 | all |" in text
    assert rows["30 epochs"]["max_epochs"] == "30" and float(rows["30 epochs"]["epochs"]) <= 30
    assert rows["default"]["max_epochs"] == "1000"  # 45 training windows: one batch an epoch
    assert all(float(r["mse_ratio"]) > 0 for r in rows.values())


def test_forecasting_quick(tmp_path, shared_data_dir):
    """Issue 7's CI mode: ETTh1 H=96, QL-LSTM and GRU in the SegRNN network, 2 epochs of a small model."""
    run_quick("forecasting.py", tmp_path, shared_data_dir)
    text = (tmp_path / "forecasting.md").read_text()
    assert f"`python benchmarks/forecasting.py --quick --out {tmp_path}`" in text
    assert (tmp_path / "forecasting.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    rows = {r["cell"]: r for r in read_csv(tmp_path / "forecasting.csv")}
    assert set(rows) == {"qllstm", "gru"}
    d = h = 32  # d_model feeds the cell: QL-LSTM 2H(d+H)+7H, nn.GRU 3H(d+H)+6H
    assert int(rows["qllstm"]["recurrent_params"]) == 2 * h * (d + h) + 7 * h
    assert int(rows["gru"]["recurrent_params"]) == 3 * h * (d + h) + 6 * h
    for r in rows.values():
        assert r["dataset"] == "etth1" and r["horizon"] == "96" and float(r["lr"]) == 3e-4
        assert 0 < float(r["mse"]) and 0 < float(r["naive_mse"]) and int(r["epochs_run"]) <= 2


def test_epoch_budget_quick(tmp_path, shared_data_dir):
    run_quick("epoch_budget.py", tmp_path, shared_data_dir)
    text = check_markdown(tmp_path / "epoch_budget.md", "epoch_budget.py")
    rows = {r["arm"]: r for r in read_csv(tmp_path / "epoch_budget.csv")}
    assert set(rows) == {"20 epochs", "1,000 steps", "1,000 steps + ES"} and "| noisy_sign | 200 | accuracy |" in text
    assert [int(rows[a]["max_epochs"]) for a in rows] == [20, 250, 250]  # 200 rows: 4 batches an epoch
    assert int(rows["20 epochs"]["epochs_run"]) == 20 and int(rows["1,000 steps"]["epochs_run"]) == 250
    assert int(rows["1,000 steps + ES"]["epochs_run"]) < 250  # early stopping ended it
    assert all(0.5 < float(r["value"]) <= 1 for r in rows.values())  # better than chance on the noisy sign


def test_target_scaling_quick(tmp_path, shared_data_dir):
    run_quick("target_scaling.py", tmp_path, shared_data_dir)
    text = check_markdown(tmp_path / "target_scaling.md", "target_scaling.py")
    rows = {r["normalize_y"]: r for r in read_csv(tmp_path / "target_scaling.csv")}
    assert set(rows) == {"False", "True"} and "| synthetic_level | level |" in text
    # a level of 1000 +- 434: as given, 3 epochs leave the head far below it; scaled, it starts there
    assert float(rows["False"]["r2"]) < 0 < float(rows["True"]["r2"])


def test_quantile_calibration_quick(tmp_path, shared_data_dir):
    run_quick("quantile_calibration.py", tmp_path, shared_data_dir)
    text = check_markdown(tmp_path / "quantile_calibration.md", "quantile_calibration.py")
    (row,) = read_csv(tmp_path / "quantile_calibration.csv")
    assert row["dataset"] == "etth1" and int(row["test_windows"]) == 4 * 30 * 24 - 24 + 1  # every stride-1 window
    for name in ("coverage", "coverage_first_quarter", "coverage_last_quarter"):
        assert 0.0 < float(row[name]) < 1.0
    assert float(row["width"]) > 0 and float(row["pinball"]) > 0
    assert "| etth1 | 2857 | 1 |" in text
