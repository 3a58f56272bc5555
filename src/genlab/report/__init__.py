"""Reports: PNG figures of samples, reconstructions and curves, and a self-contained
HTML page per run (``write_report``)."""
from .figures import image_grid, plot_curves, plot_reconstructions, plot_table_samples, save_grid
from .html import write_report

__all__ = ["write_report", "image_grid", "save_grid", "plot_curves", "plot_reconstructions",
           "plot_table_samples"]
