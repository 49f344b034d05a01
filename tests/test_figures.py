"""busi_lib.book.figures: the figures that carry structure a test can check (panels, lines)."""

from __future__ import annotations

import matplotlib

matplotlib.use("Agg")

import pytest  # noqa: E402

from busi_lib.book import figures  # noqa: E402


def _rec(fold, losses):
    return {"fold": fold, "history": [{"epoch": i + 1, "loss": v} for i, v in enumerate(losses)]}


def test_plot_loss_panels_one_panel_per_recorded_experiment_one_line_per_fold():
    recs = {"base_resnet50": [_rec(0, [0.9, 0.5, 0.2]), _rec(1, [0.8, 0.4, 0.3])],
            "base_vgg19": [_rec(0, [0.152] * 3)],
            "base_densenet201": []}
    fig = figures.plot_loss_panels(recs, cols=2)
    shown = [ax for ax in fig.axes if ax.get_visible()]
    assert [ax.get_title() for ax in shown] == ["base_resnet50", "base_vgg19"]
    assert [len(ax.get_lines()) for ax in shown] == [2, 1]
    assert list(shown[1].get_lines()[0].get_ydata()) == [0.152] * 3
    assert shown[0].get_yscale() == "log"
    failed = dict(_rec(1, [0.5, float("nan")]), diverged_at=2)
    fig = figures.plot_loss_panels({"base_inceptionv3": [failed]})
    assert fig.axes[0].get_lines()[0].get_label() == "fold 2 (diverged, epoch 2)"
    assert figures.plot_loss_panels({"x": []}) is None
    with pytest.raises(ValueError, match="cols=0"):
        figures.plot_loss_panels(recs, cols=0)
