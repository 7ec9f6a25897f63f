"""The book's figure helpers draw what they are given (dgtrs_lib.publishing.figures)."""
import matplotlib

matplotlib.use("Agg")

from dgtrs_lib.publishing.figures import CONTENT_WIDTH_IN, prior_length_figure  # noqa: E402


def _measured():
    curve = [{"tokens_read": k, "i2t_R@1": k / 2, "t2i_R@1": k / 3, "mR": k / 1.5} for k in (4, 8, 12, 16)]
    return {"curve": curve, "movement": [1.0] * 10 + [0.01] * 6, "effective_length": 12, "trained_rows": 10,
            "choice": {"keep": 10, "ratio": 3, "context": 28}}


def test_prior_length_figure_marks_effective_length_keep_and_trained_rows():
    measured = _measured()
    fig = prior_length_figure(measured, keep=10)
    assert len(fig.axes) == 2 and fig.get_size_inches()[0] <= CONTENT_WIDTH_IN + 1e-9
    curve_ax, bars_ax = fig.axes
    labels = curve_ax.get_legend_handles_labels()[1]
    assert {"mR", "t2i_R@1", "i2t_R@1", "effective length 12", "configured keep 10"} <= set(labels)
    vertical = sorted(line.get_xdata()[0] for line in curve_ax.lines if len(set(line.get_xdata())) == 1)
    assert vertical == [10, 12]
    assert len(bars_ax.patches) == len(measured["movement"])
    assert "trained rows 10" in bars_ax.get_legend_handles_labels()[1]


def test_prior_length_figure_adds_the_plateau_curve_with_its_references():
    curve = [{"step": s, "i2t_R@1": s / 10, "t2i_R@1": s / 12} for s in (3, 6)]
    fig = prior_length_figure(_measured(), keep=10, curve=curve, references={"class-only": 0.4, "chance": 0.1})
    assert len(fig.axes) == 3
    plateau = fig.axes[0]
    assert [list(line.get_xdata()) for line in plateau.lines[:2]] == [[3, 6], [3, 6]]
    assert {"class-only", "chance"} <= set(plateau.get_legend_handles_labels()[1])
