"""The LSTM (adding problem), GNN (stochastic block model) and attention (recall) examples,
shortened with --quick: each reaches its threshold with a wide margin on every seed tried."""

from gpugrad.examples import gnn, lstm


def test_lstm_quick_beats_the_mean_baseline_tenfold():
    m = lstm.main(["--quick"])
    assert m["steps"] == 600 and m["seq_len"] == 20
    assert 0.12 < m["baseline_mse"] < 0.22  # Var(U1 + U2) = 1/6
    assert m["test_mse"] < 0.1 * m["baseline_mse"]  # reached ~0.001 (>100x) on seeds 0-3
    assert m["improvement_over_baseline"] > 10


def test_gnn_quick_reaches_90_percent_and_beats_features_only():
    m = gnn.main(["--quick", "--seed", "1"])
    assert m["epochs"] == 60 and m["nodes"] == 600
    assert m["gnn_test_accuracy"] >= 0.90
    assert m["gnn_test_accuracy"] > m["mlp_test_accuracy (features only)"] + 0.2


def test_attention_quick_learns_the_lookup():
    from gpugrad.examples import attention

    m = attention.main(["--quick"])
    assert m["test_mse"] < 0.02 * m["baseline_mse"]  # ~0.001 vs 1/3 on seeds 0-3
    assert m["attention_on_matching_item"] > 0.4  # uniform attention would give 1/8
