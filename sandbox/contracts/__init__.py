"""A corpus of trade contracts made by the project: templates in several layouts rendered to PDF,
half of them turned into scans, each with its ground truth and the payable it backs (a quarter
with a planted disagreement). Demo, tests and ``cvhub bench review`` only; production code never
imports this package."""
