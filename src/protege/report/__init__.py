"""Reports of a run: report.json and the summary table in the terminal."""
