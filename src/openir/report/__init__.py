"""HTML reports and figures for every stage."""
