"""The jobs stage: a plan's jobs run as Ray tasks, each result recorded in the store by the driver.

- `schedule`: `run_plan` (submits each job once its dependencies are done, shows progress, records results);
- `runners`: what each job kind computes where it runs (`RUNNERS`, `execute`: the function a Ray worker runs);
- `context`: what every kind needs from where it runs (device, threads, sections, splits, progress, UserError);
- `training`, `sharded`, `measure`, `curation`: the train epoch, its FSDP form, the `measure` kind and
  curation's `collect` and `score`.
"""
