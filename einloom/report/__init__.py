"""Reports: tables, plots, Markdown/HTML summaries."""
