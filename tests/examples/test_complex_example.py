"""The complex FIR filter example: a shortened (--quick) run learns the channel."""

from gpugrad.examples import complex_filter


def test_complex_filter_quick_loss_falls_a_thousandfold():
    m = complex_filter.main(["--quick"])
    assert m["steps"] == 120 and m["taps"] == 8
    # Falls to the target-noise floor (1e-4): ~5e-5 to 1.2e-4 of the start on seeds 0-3.
    assert m["loss_last"] < 1e-3 * m["loss_first"]
    assert m["max_tap_error"] < 0.01
    assert m["grad_vs_closed_form"] < 1e-5


def test_complex_filter_other_seed():
    m = complex_filter.main(["--quick", "--seed", "3", "--taps", "4"])
    assert m["loss_last"] < 1e-3 * m["loss_first"]
