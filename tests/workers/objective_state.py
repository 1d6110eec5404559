"""Run under torchrun by tests/test_two_processes.py: trains with objectives that hold trainable parts
and memory banks, then saves each process's copy so the test can check they stayed identical."""

import os
import sys

import torch
from safetensors.torch import save_file

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))))
from tests.conftest import make_blobs

from protege.config import TrainConfig
from protege.engine import fit
from protege.models.builtin import mlp
from protege.objectives import build_objective

torch.manual_seed(0)
teacher, student = mlp((6,), 3, hidden=16), mlp((6,), 3, hidden=8)
objective = build_objective([("fitnet", {}, 1.0), ("crd", {"negatives": 8, "feat_dim": 4}, 1.0)])
fit(student, make_blobs(96), objective, TrainConfig(epochs=2, batch_size=16, lr=0.05), teacher=teacher)
state = {f"objective.{k}": v.contiguous() for k, v in objective.state_dict().items()}
state.update({f"model.{k}": v.contiguous() for k, v in student.state_dict().items()})
save_file(state, os.path.join(sys.argv[1], f"rank{os.environ['RANK']}.safetensors"))
if torch.distributed.is_initialized():  # leave the process group cleanly: gloo can abort at interpreter exit
    torch.distributed.barrier()
    torch.distributed.destroy_process_group()
