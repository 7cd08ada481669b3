"""Two-process DDP supernet training on CPU (gloo) for a few steps: both processes end with the same
weights, the weights moved, and rank 0 wrote a checkpoint that resumes."""

from __future__ import annotations

import os
import socket

import numpy as np
import torch
import torch.distributed as dist
import torch.multiprocessing as mp

from mcuforge.data.dataset import ArrayDataset
from mcuforge.nas.sandwich import SupernetTrainConfig, load_supernet, supernet_checkpoint_path, train_supernet
from mcuforge.nas.space import SearchSpace
from mcuforge.nas.supernet import SuperNet

SPACE = SearchSpace(0.2, 32, in_channels=1, num_classes=10)
CONFIG = SupernetTrainConfig(epochs=1, batch_size=8, lr=0.05, threads=1, progress=False, stop_after_steps=2,
                             checkpoint_every_steps=None)


def tiny_dataset() -> ArrayDataset:
    rng = np.random.default_rng(0)
    images = rng.integers(0, 256, size=(48, 28, 28, 1), dtype=np.uint8)
    return ArrayDataset(images, rng.integers(0, 10, size=48), [str(i) for i in range(10)], "synthetic")


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _worker(rank: int, world: int, port: int, out_dir: str) -> None:
    os.environ.update(MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port), WORLD_SIZE=str(world), RANK=str(rank),
                      LOCAL_RANK=str(rank))
    torch.manual_seed(0)  # the same initial weights everywhere (DDP also broadcasts rank 0's)
    net = SuperNet(SPACE)
    train_supernet(net, tiny_dataset(), CONFIG, run_dir=out_dir if rank == 0 else None)
    torch.save(net.state_dict(), os.path.join(out_dir, f"rank{rank}.pt"))
    dist.barrier()
    dist.destroy_process_group()


def test_two_process_ddp_supernet_training(tmp_path):
    mp.spawn(_worker, args=(2, _free_port(), str(tmp_path)), nprocs=2, join=True)
    first = torch.load(tmp_path / "rank0.pt")
    second = torch.load(tmp_path / "rank1.pt")
    torch.manual_seed(0)
    initial = SuperNet(SPACE).state_dict()
    parameter_names = {name for name, _ in SuperNet(SPACE).named_parameters()}
    moved = 0
    for name in parameter_names:  # BN running statistics are per process between broadcasts
        assert torch.allclose(first[name], second[name], atol=1e-6), name
        moved += int(not torch.equal(first[name], initial[name]))
    assert moved > 10
    net, state = load_supernet(supernet_checkpoint_path(tmp_path))
    assert state["world_size"] == 2 and state["step"] == 2
    for name, value in net.state_dict().items():
        assert torch.equal(value, first[name])
