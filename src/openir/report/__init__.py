"""HTML reports and figures for every stage: self-contained pages, slices with overlays, the
registry's QC report (funnel plots, CUSUM curves) and dose charts. Domain packages compute; this
package draws."""

from .dose_figures import distribution_chart, drl_boxplot_png, trend_chart
from .drg_figures import drg_funnel_png
from .figures import figure_png, label_colours, overlay_slices_png
from .html import esc, img_tag, page, table
from .qc_report import qc_page_html, render_qc_html
from .registry_figures import cusum_figure, cusum_svg, funnel_figure, funnel_png, funnel_svg
from .seed_exercise_figure import seed_exercise_figure
from .training_figure import exercise_figure

__all__ = [
    "cusum_figure", "cusum_svg", "distribution_chart", "drg_funnel_png", "drl_boxplot_png", "esc", "exercise_figure", "figure_png",
    "funnel_figure",
    "funnel_png", "funnel_svg", "img_tag", "label_colours", "overlay_slices_png", "page", "qc_page_html",
    "render_qc_html", "seed_exercise_figure", "table", "trend_chart",
]
