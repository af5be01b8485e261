"""What a plan will cost before it runs: `premem plan --cost`, and the GPU memory and disk checks.

Lowest first (each imports only those above it):
- `throughputs`: the throughputs file (`ThroughputsFile`, `load_throughputs`, `CostError`) and the example file
  shipped with premem (`throughputs-example.yaml`: assumed GPU figures);
- `datasets`: split sizes and mean token lengths of each dataset (`dataset_stats`);
- `work`: what each job computes (`job_work`: tokens trained, scored, sampled; model loads);
- `rates`: throughputs per model, premem's and the authors' (`resolve_rates`), and a job's seconds;
- `wall_clock`: the plan replayed on a cluster of the file's size;
- `estimate`: hours per job kind both ways, the ratio, and the text `premem plan` prints (`estimate`,
  `format_estimate`, `plan_footer`);
- `memory`: a train job's GPU memory per GPU, checked by `premem plan` and `premem apply`;
- `disk`: whether the store can take the plan's checkpoints (a writable folder with room), checked by `apply`.
"""
