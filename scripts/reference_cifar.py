"""An independent ResNet-20 for CIFAR-10 on the paper's Section 4.2 recipe, written only with
torch and torchvision (nothing from ``resnets``): the yardstick that tells what a data set costs
from what our code costs. Run it beside ``resnets`` on the same data; if both land on the same
error, the gap to the paper's 8.75% is the data's (our CIFAR-10 copy is re-encoded as JPEG).

    python scripts/reference_cifar.py DATA_DIR OUT_DIR [--iterations 64000] [--batch-size 128] [--workers 8]

DATA_DIR is an image folder with train/ and test/ (ImageFolder layout). The pipeline is
torchvision's usual one: ImageFolder, RandomCrop(32, padding=4), RandomHorizontalFlip, a
DataLoader with workers; the network is the paper's 6n+2 design with option A shortcuts, written
out here; SGD with momentum 0.9, weight decay 1e-4, batch 128, lr 0.1 divided by 10 at 50% and
75% of training, per-pixel mean subtracted, fp32. Writes OUT_DIR/results.json and metrics.jsonl,
and OUT_DIR/checkpoint.pt after every epoch: run the same command again to continue an interrupted run.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn
from torchvision import datasets
from torchvision.transforms import v2


class Block(nn.Module):
    def __init__(self, cin: int, cout: int, stride: int):
        super().__init__()
        self.conv1 = nn.Conv2d(cin, cout, 3, stride, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(cout)
        self.conv2 = nn.Conv2d(cout, cout, 3, 1, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(cout)
        self.pad = cout - cin  # option A: subsample, then zero-pad the new channels

    def forward(self, x):
        out = self.bn2(self.conv2(F.relu(self.bn1(self.conv1(x)))))
        shortcut = x
        if self.pad:
            shortcut = F.pad(x[:, :, ::2, ::2], (0, 0, 0, 0, self.pad // 2, self.pad - self.pad // 2))
        return F.relu(out + shortcut)


class CifarResNet(nn.Module):
    def __init__(self, n: int = 3, classes: int = 10):
        super().__init__()
        self.conv = nn.Conv2d(3, 16, 3, 1, 1, bias=False)
        self.bn = nn.BatchNorm2d(16)
        layers, cin = [], 16
        for cout, stride in ((16, 1), (32, 2), (64, 2)):
            for i in range(n):
                layers.append(Block(cin, cout, stride if i == 0 else 1))
                cin = cout
        self.layers = nn.Sequential(*layers)
        self.fc = nn.Linear(64, classes)
        for m in self.modules():
            if isinstance(m, nn.Conv2d):
                nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")

    def forward(self, x):
        x = self.layers(F.relu(self.bn(self.conv(x))))
        return self.fc(x.mean((2, 3)))


def as_tensors(folder: Path, workers: int) -> tuple[torch.Tensor, torch.Tensor]:
    """An ImageFolder decoded once into uint8 images (N, 3, 32, 32 for CIFAR) and labels."""
    data = datasets.ImageFolder(str(folder), transform=v2.Compose([v2.PILToTensor()]))
    loader = torch.utils.data.DataLoader(data, batch_size=1000, num_workers=workers)
    images, labels = zip(*loader)
    return torch.cat(images), torch.cat(labels)


class Augmented(torch.utils.data.Dataset):
    def __init__(self, images, labels, mean):
        self.images, self.labels, self.mean = images, labels, mean
        # RandomCrop(32, padding=4) on CIFAR: a crop of the images' own size after padding.
        self.augment = v2.Compose([v2.RandomCrop(images.shape[-2:], padding=4), v2.RandomHorizontalFlip()])

    def __len__(self):
        return len(self.labels)

    def __getitem__(self, i):
        # Crop and flip the uint8 image (black padding), then subtract the mean: torchvision's
        # usual order (RandomCrop, RandomHorizontalFlip, ToTensor, Normalize).
        return self.augment(self.images[i]).float() / 255 - self.mean, self.labels[i]


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("data", type=Path)
    p.add_argument("out", type=Path)
    p.add_argument("--iterations", type=int, default=64_000)
    p.add_argument("--batch-size", type=int, default=128, help="the paper's 128; smaller for a test")
    p.add_argument("--depth", type=int, default=20, help="6n+2")
    p.add_argument("--workers", type=int, default=8)
    p.add_argument("--seed", type=int, default=0)
    args = p.parse_args()
    torch.manual_seed(args.seed)
    device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    args.out.mkdir(parents=True, exist_ok=True)

    train_x, train_y = as_tensors(args.data / "train", args.workers)
    test_x, test_y = as_tensors(args.data / "test", args.workers)
    mean = train_x.float().div(255).mean(0)  # the per-pixel mean (3, 32, 32)
    loader = torch.utils.data.DataLoader(Augmented(train_x, train_y, mean), batch_size=args.batch_size, shuffle=True,
                                         drop_last=True, num_workers=args.workers, persistent_workers=args.workers > 0)
    test_x = (test_x.float() / 255 - mean).to(device)
    model = CifarResNet((args.depth - 2) // 6).to(device)
    optimizer = torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.9, weight_decay=1e-4)
    milestones = [args.iterations // 2, args.iterations * 3 // 4]
    scheduler = torch.optim.lr_scheduler.MultiStepLR(optimizer, milestones)

    def test_error() -> float:
        model.eval()
        with torch.no_grad():
            wrong = sum((model(x).argmax(1).cpu() != y).sum().item() for x, y in zip(test_x.split(500), test_y.split(500)))
        model.train()
        return wrong / len(test_y)

    step, record, checkpoint = 0, {"elapsed": 0.0}, args.out / "checkpoint.pt"
    if checkpoint.is_file():  # written by this script: the weights_only loader reads it
        state = torch.load(checkpoint, map_location=device, weights_only=True)
        model.load_state_dict(state["model"])
        optimizer.load_state_dict(state["optimizer"])
        scheduler.load_state_dict(state["scheduler"])
        step, record = state["step"], state["record"]
        torch.set_rng_state(state["rng"].cpu())  # map_location moved it with the rest
        print(f"resumed at iteration {step}", flush=True)
    started, log = time.perf_counter() - record["elapsed"], open(args.out / "metrics.jsonl", "a" if step else "w")
    while step < args.iterations:
        wrong = seen = 0
        for x, y in loader:
            x, y = x.to(device, non_blocking=True), y.to(device, non_blocking=True)
            logits = model(x)
            loss = F.cross_entropy(logits, y)
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            scheduler.step()
            wrong, seen, step = wrong + (logits.argmax(1) != y).sum(), seen + len(y), step + 1
            if step == args.iterations:
                break
        record = {"step": step, "train_error": float(wrong) / seen, "test_error": test_error(),
                  "elapsed": time.perf_counter() - started}
        log.write(json.dumps(record) + "\n")
        log.flush()
        state = {"model": model.state_dict(), "optimizer": optimizer.state_dict(), "scheduler": scheduler.state_dict(),
                 "step": step, "record": record, "rng": torch.get_rng_state()}
        torch.save(state, checkpoint.with_suffix(".tmp"))
        checkpoint.with_suffix(".tmp").replace(checkpoint)
    results = {"model": f"reference resnet{args.depth}", "data": str(args.data), "iterations": step,
               "test_error": record["test_error"], "wall_time_s": record["elapsed"], "precision": "fp32",
               "device": torch.cuda.get_device_name() if device.type == "cuda" else "cpu"}
    (args.out / "results.json").write_text(json.dumps(results, indent=2))
    print(f"reference resnet{args.depth}: test error {100 * results['test_error']:.2f}% after {step} iterations "
          f"in {results['wall_time_s'] / 60:.1f} min")


if __name__ == "__main__":
    main()
