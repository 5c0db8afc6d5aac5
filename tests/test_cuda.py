"""What only a CUDA GPU can run, skipped elsewhere (CI has none): on a GPU machine,
`python -m pytest -q tests/test_cuda.py` before spending its time on runs."""

import copy
import warnings

import pytest
import torch

from resnets import create_model
from resnets.training import make_config, train
from resnets.training.step import GraphedStep, count, training_step

pytestmark = pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")


def test_the_graphed_step_trains_as_the_eager_loop(monkeypatch):
    # Eight steps of resnet20: three eager, then the capture, then replays, with the lr changed
    # between replays (a schedule's step); the eager twin runs the same SGD (fused) step by step.
    # cuDNN's deterministic kernels, so that the two differ by no atomics' order; the tolerances
    # still leave room for TF32 convolutions (a stale batch or a missed lr change is far larger).
    monkeypatch.setattr(torch.backends.cudnn, "deterministic", True)
    torch.manual_seed(0)
    net = create_model("resnet20").cuda().to(memory_format=torch.channels_last).train()
    twin = copy.deepcopy(net)
    g = torch.Generator().manual_seed(0)
    batches = [(torch.randn(32, 3, 32, 32, generator=g).cuda().contiguous(memory_format=torch.channels_last),
                torch.randint(0, 10, (32,), generator=g).cuda()) for _ in range(8)]
    sgd = dict(lr=0.1, momentum=0.9, weight_decay=1e-4)
    optimizer, twin_optimizer = torch.optim.SGD(net.parameters(), **sgd), torch.optim.SGD(twin.parameters(), fused=True, **sgd)
    sums, twin_sums = (torch.zeros(3, dtype=torch.float64, device="cuda") for _ in range(2))
    graphed = GraphedStep(net, optimizer, sums, "fp32")
    scaler = torch.amp.GradScaler("cuda", enabled=False)
    for i, (x, y) in enumerate(batches):
        for opt in (optimizer, twin_optimizer):
            opt.param_groups[0]["lr"] = 0.1 if i < 6 else 0.01
        graphed(x, y)
        count(twin_sums, *training_step(twin, twin_optimizer, scaler, x, y, "fp32"), y)
    assert graphed.graph is not None and not graphed.failed
    torch.cuda.synchronize()
    ours, theirs = net.state_dict(), twin.state_dict()
    for key in ours:
        torch.testing.assert_close(ours[key], theirs[key], rtol=1e-3, atol=1e-4, msg=key)
    torch.testing.assert_close(sums, twin_sums, rtol=1e-4, atol=1e-4)
    assert sums[2].item() == 8 * 32


def test_a_compiled_run_on_the_gpu_records_its_step_and_learns(tmp_path):
    # The trainer's own path: torch.compile, the whole step captured (no warning that it could not
    # be), evaluation of the eager net between epochs, checkpoints, results.
    config = make_config("fast", model="resnet20", data="digits", epochs=3, batch_size=64, lr=0.2, device="cuda",
                         compile=True, out=str(tmp_path))
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        run = train(config)
    assert not [w for w in caught if "CUDA graph" in str(w.message)]
    assert run.results["compiled"] and run.results["test_top1"] > 0.5


def test_bench_step_times_replays_of_the_graph_only(monkeypatch):
    # The compiled mode's eager steps and its recording come before the warm-up: every timed step
    # (the last two calls) replays the graph (with --warmup 1 the recording was timed).
    from resnets.bench import bench_step

    replays = []
    call = GraphedStep.__call__

    def spy(self, x, y):
        replays.append(self.graph is not None)
        call(self, x, y)

    monkeypatch.setattr(GraphedStep, "__call__", spy)
    bench_step("resnet20", resolution=32, batch_size=8, rounds=1, steps=2, warmup=1, device="cuda")
    assert replays == [False] * 4 + [True] * 3  # three eager steps and the recording; the warm-up and two timed
