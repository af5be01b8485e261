"""The analysis stage: finished per-example results turned into `summary` and `dynamics` (no model, no torch).

- `analyze`: `analyze_plan(plan, store)`, calibration of p, PreMemAcc, R^2 and the summary;
- `results`: `RunData` (one run's per-example results), `block_of`;
- `measures`, `curation`, `seeds`: the classic measures' correlations, the curation curves, the seed groups;
- `intervals`: bootstrap intervals and leave-one-run-out;
- `results_table`: the long table `premem analyze` reads and `premem export` writes;
- `precision`: which runs were trained in pure low precision (the report marks them).
"""
