"""The report (HTML and Markdown), its montages and the matplotlib figures."""
