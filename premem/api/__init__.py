"""premem's Python API, for notebooks and scripts: load results, analyze them, show and save figures.

    from premem import api
    df = api.load_study("specs/quickstart.yaml")       # or api.load_table("results.parquet")
    a = api.analyze(df)                                 # what `premem analyze` computes and prints
    a                                                   # in Jupyter: headline numbers + PreMemAcc vs test
    a.p, a.r2, a.ci("r2"), a.checkpoints()              # numbers and tables (pandas)
    a.figure("calibration").save("calibration.svg")
    a.write_report("reports")                           # the HTML report folder

`premem analyze` is a thin layer over these functions, so both give the same numbers for the same table and
options. Every statistic is premem's own (premem.analysis.analyze, premem.analysis.intervals, premem.metrics.premem);
see docs/API.md.

Modules: load (tables and stores in), options (checked settings), run (the analysis), result (Analysis,
Figure).
"""
from premem.analysis.results_table import TableError
from premem.api.load import load_study, load_table, read
from premem.api.options import OptionError, Options, options
from premem.api.result import Analysis, Figure
from premem.api.run import analyze, analyze_results, analyze_study, describe, premem_acc

__all__ = [
    "Analysis",
    "Figure",
    "OptionError",
    "Options",
    "TableError",
    "analyze",
    "analyze_results",
    "analyze_study",
    "describe",
    "load_study",
    "load_table",
    "options",
    "premem_acc",
    "read",
]
