"""What a plan will cost before it runs: `premem plan --cost` and the GPU memory check.

- `model`: the work each job does, counted from the plan, and its time from a throughputs file
  (`throughputs-example.yaml`: example GPU figures shipped with premem);
- `memory`: a train job's GPU memory per GPU, checked by `premem plan` and `premem apply`.
"""
