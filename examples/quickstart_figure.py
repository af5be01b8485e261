# %% [markdown]
# # The quickstart's headline figure, from Python
#
# Loads a finished quickstart study (the store `premem apply specs/quickstart.yaml` fills) with premem's Python
# API, analyzes it as `premem analyze` would, and saves PreMemAcc against test accuracy as an SVG file.
# Run it as a script (`python examples/quickstart_figure.py`) or cell by cell (`# %%`) in Jupyter or VS Code,
# where the analysis also shows itself inline.
#
# First, once (about 30 minutes on a laptop CPU):
#
#     premem apply specs/quickstart.yaml
#
# It writes the store `.premem/` in the folder you ran it in; run this script from that folder, or give the
# store with `--store`. `--table` analyzes an exported table instead (`premem export specs/quickstart.yaml`).

# %%
import argparse
import sys
from pathlib import Path

from premem import api
from premem.spec.load import load_spec

ROOT = Path(__file__).resolve().parents[1]

ap = argparse.ArgumentParser(description="Save the quickstart's PreMemAcc-vs-test-accuracy figure as SVG.")
ap.add_argument("--spec", default=str(ROOT / "specs" / "quickstart.yaml"), help="the study's spec")
ap.add_argument("--store", default=None, help="its store folder (default: the spec's, from the working folder)")
ap.add_argument("--table", default=None, help="analyze this exported results table instead of the store")
ap.add_argument("--out", default="quickstart-premem-vs-test.svg", help="the SVG file to write")
args, _ = ap.parse_known_args()  # known only: Jupyter passes its own arguments

# %% Load every per-example result as a DataFrame (one row per run, checkpoint, split and example)
try:
    df = api.load_table(args.table) if args.table else api.load_study(args.spec, store=args.store)
except (FileNotFoundError, api.TableError) as e:
    sys.exit(f"{e}\n\nThis example needs a finished quickstart study. Run first (about 30 minutes on a CPU):\n"
             f"    premem apply {args.spec}\nthen run this script from the same folder (or pass --store).")
print(f"{len(df):,} rows, {df['run'].nunique()} runs")

# %% Analyze it with the spec's p grid: calibrate p, R^2 with bootstrap intervals (as `premem analyze` does)
grid = load_spec(args.spec).premem.p_grid
analysis = api.analyze(df, p_grid=(grid.start, grid.stop, grid.step))
print(analysis)
print("R^2 of PreMemAcc about y = x:", analysis.r2, "95% interval:", analysis.ci("r2"))
print(analysis.checkpoints()[["run", "checkpoint", "premem_acc", "test_acc"]].to_string(index=False))
analysis  # in a notebook: the headline table and the figure, inline

# %% Save the figure (the same SVG the HTML report shows)
path = analysis.figure("premem_vs_test").save(args.out)
print(f"Saved {path}")
