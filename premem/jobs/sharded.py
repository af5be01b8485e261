"""One epoch of a run trained with the model sharded over several processes (training.shards > 1): FSDP
(torch.distributed's fully_shard) over the job's GPUs, one process per GPU with NCCL; on a CPU, one process
per shard with gloo (what the tests run). A 7-9B model's full finetuning under mixed precision (float32
weights, gradients and AdamW state: 16 bytes a parameter, premem.cost.memory) does not fit one 141 GB GPU; sharded
over N, each GPU holds 1/N of weights, gradients and optimizer state. Under mixed precision the passes run under
autocast on the float32 shards, and the checkpoint keeps the float32 weights (premem.engine.train).

The train job's Ray task spawns the processes (Ray gives the task its GPUs through CUDA_VISIBLE_DEVICES, so
process r uses cuda:r), relays rank 0's progress lines and returns rank 0's result. Each process takes every
N-th example of each batch (premem.engine.train._accumulate_shard); the checkpoint is gathered in full on rank 0 and
written in the same format as an unsharded run's, so evaluation and every measure read it unchanged; the
optimizer state is written by parameter name (`optimizer_full.pt`), which the next sharded epoch scatters back.
"""
from __future__ import annotations

import datetime
import os
import queue as queue_mod
import socket
import time
import traceback

import torch

from premem.jobs.context import Progress, UserError, job_device
from premem.jobs.training import diverged_result, prepare_training, train_result
from premem.plan.job import Job
from premem.store import Store

OPTIMIZER_FULL_FILE = "optimizer_full.pt"  # optimizer state keyed by parameter name (a sharded run's)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def train_sharded(job: Job, store: Store, progress: Progress) -> dict:
    """Train the job's epoch over training.shards processes; return the train job's result (as
    jobs.run_train_epoch does). A UserError in any process is raised as a UserError here."""
    import torch.multiprocessing as mp

    world = job.settings.training["shards"]
    ctx = mp.get_context("spawn")  # fork would copy this process's torch threads and Ray state
    messages = ctx.Queue()
    port = _free_port()
    procs = [ctx.Process(target=_worker, args=(rank, world, port, job, str(store.root), messages), daemon=True)
             for rank in range(world)]
    for p in procs:
        p.start()
    progress(f"training sharded over {world} processes")
    result, error, give_up = None, None, None
    try:
        while True:
            try:
                kind, payload = messages.get(timeout=1.0)
            except queue_mod.Empty:
                alive = [p.is_alive() for p in procs]
                if not any(alive):
                    break
                if give_up is None and not all(alive) and (error is not None or result is None):
                    # a process stopped (an error, killed, out of memory) while others run: they may wait in a
                    # collective forever, so they get a grace period to finish or fail on their own
                    give_up = time.time() + 10
                if give_up is not None and time.time() > give_up:
                    break
                continue
            if kind == "progress":
                progress(payload)
            elif kind == "result":
                result = payload
            else:
                error = error or (kind, payload)
    finally:
        for p in procs:
            if p.is_alive():
                p.terminate()
            p.join(timeout=30)
    if error is not None:
        kind, text = error
        raise (UserError if kind == "user_error" else RuntimeError)(text)
    if result is None:
        codes = [p.exitcode for p in procs]
        raise RuntimeError(f"a training process ended without a result (exit codes {codes})")
    return result


def _decoder_layers(model: torch.nn.Module) -> list[torch.nn.Module]:
    """The model's repeated blocks (each sharded on its own, so only one block's weights are gathered at a
    time): the modules whose class transformers names in `_no_split_modules`."""
    names = set(getattr(model, "_no_split_modules", None) or [])
    return [m for m in model.modules() if type(m).__name__ in names]


def _worker(rank: int, world: int, port: int, job: Job, store_root: str, messages) -> None:
    """One process of a sharded epoch: join the group, load and shard the model, train this process's share,
    gather the checkpoint on rank 0 and write it; report through `messages`."""
    import torch.distributed as dist
    from torch.distributed.checkpoint.state_dict import StateDictOptions, get_state_dict, set_state_dict
    from torch.distributed.device_mesh import init_device_mesh
    from torch.distributed.fsdp import fully_shard

    from premem.engine.models import resolve_device
    from premem.engine.train import STATE_FILE, Diverged, grad_scaler, make_optimizer, scaler_state, train_epoch

    try:
        os.environ.update(MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port))
        kind = resolve_device(job_device(job)).type
        if kind == "cuda":
            torch.cuda.set_device(rank)
            device = f"cuda:{rank}"
        else:
            torch.set_num_threads(max(1, int(job.resources.get("cpus", 1)) // world))
            device = "cpu"
        # rank 0 writes a 7-9B checkpoint with its optimizer state (about 100 GB) while the others wait at the
        # barrier: a generous timeout, not NCCL's default
        dist.init_process_group("nccl" if kind == "cuda" else "gloo", rank=rank, world_size=world,
                                timeout=datetime.timedelta(hours=2))
        store = Store(store_root)
        s = job.settings
        setup = prepare_training(job, store, device)
        model = setup.loaded.model
        mesh = init_device_mesh(kind, (world,))
        for layer in _decoder_layers(model):
            fully_shard(layer, mesh=mesh)
        fully_shard(model, mesh=mesh)
        opt = make_optimizer(model, setup.recipe)
        full = StateDictOptions(full_state_dict=True, cpu_offload=True)
        if setup.resumes:
            path = setup.source / OPTIMIZER_FULL_FILE
            if not path.exists():
                raise UserError(f"{setup.source} holds no sharded optimizer state ({OPTIMIZER_FULL_FILE}): its "
                                "epoch was trained unsharded, so this run cannot go on sharded")
            osd = torch.load(path, map_location="cpu", weights_only=True)
            set_state_dict(model, opt, model_state_dict={}, optim_state_dict=osd,
                           options=StateDictOptions(full_state_dict=True))

        scaler = grad_scaler(setup.recipe, device, sharded=True,
                             state=scaler_state(setup.source) if setup.resumes else None)

        def report(line: str) -> None:
            if rank == 0:
                messages.put(("progress", line))

        try:
            out = train_epoch(setup.loaded, opt, setup.seqs, setup.recipe, s.seed, s.epoch, setup.start_step,
                              report, shard=(rank, world), scaler=scaler)
        except Diverged as e:  # every process sees the same summed loss, so all stop here together
            if rank == 0:
                messages.put(("result", diverged_result(s, e)))
            dist.destroy_process_group()
            return
        weights, optim = get_state_dict(model, opt, options=full)  # collective: every process takes part
        if rank == 0:
            import json

            from premem.engine.models import save_model

            staging = store.staging(job.id)
            save_model(model, setup.loaded.codec, staging, state_dict=weights)
            torch.save(optim, staging / OPTIMIZER_FULL_FILE)
            state = {"epoch": s.epoch, "step": out["end_step"], "shards": world}
            if scaler is not None:
                state["grad_scaler"] = scaler.state_dict()
            (staging / STATE_FILE).write_text(json.dumps(state))
            store.publish(staging, job.id)
            messages.put(("result", train_result(s, out, len(setup.seqs)) | {"shards": world}))
        dist.barrier()
        dist.destroy_process_group()
    except UserError as e:
        messages.put(("user_error", str(e)))
    except BaseException:  # noqa: BLE001 - everything reaches the parent, which raises it
        messages.put(("error", f"shard {rank}: {traceback.format_exc()}"))
