"""HTML reports and figures for every stage: self-contained pages, slices with overlays."""

from .figures import figure_png, label_colours, overlay_slices_png
from .html import esc, img_tag, page, table

__all__ = ["esc", "figure_png", "img_tag", "label_colours", "overlay_slices_png", "page", "table"]
