"""How big an experiment runs: ``smoke`` (under a minute, for tests), ``cpu`` (a laptop's two
cores, in hours) and ``full`` (the paper's Section 4.2 recipe, a GPU job).

Every scale keeps the paper's recipe (SGD, momentum 0.9, weight decay 1e-4, lr 0.1 divided by 10
at 50% and 75% of training, batch 128, pad-and-crop and flips, per-pixel mean) and shortens it:
fewer iterations, and for ``smoke`` and ``cpu`` a seeded, class-balanced subset of the images.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Optional


@dataclass(frozen=True)
class Scale:
    name: str
    iterations: int
    batch_size: int = 128
    train_subset: Optional[int] = None
    test_subset: Optional[int] = None
    depths: tuple[int, ...] = (20, 32, 44, 56)  # of the plain and residual nets of Fig. 6
    table: tuple[int, ...] = (20, 32, 44, 56, 110)  # of the ResNets of Table 6

    @property
    def milestones(self) -> tuple[int, int]:
        # Section 4.2: 32k and 48k of 64k iterations.
        return (self.iterations // 2, self.iterations * 3 // 4)

    def describe(self) -> str:
        subset = (f"a seeded class-balanced subset of {self.train_subset:,} training images"
                  if self.train_subset else "all training images")
        test = f"{self.test_subset:,} test images" if self.test_subset else "all test images"
        return (f"scale `{self.name}`: {self.iterations:,} iterations of batch {self.batch_size}, lr 0.1 divided by 10 "
                f"at iterations {self.milestones[0]:,} and {self.milestones[1]:,}; {subset}; {test}")


SCALES = {
    "smoke": Scale("smoke", iterations=24, batch_size=32, train_subset=256, test_subset=200),
    # Training error falls well below 50% on a small subset trained for many epochs (51 epochs of
    # 10k images). Depths 20 and 32: at lr 0.1 a deeper ResNet starts slower (measured at full
    # scale: ResNet-32 passes ResNet-20 after about 3k iterations, ResNet-56 only after about 8k),
    # so 56 layers would need a schedule several times longer. Measured (docs/REPRODUCTION.md):
    # both halves of Fig. 6 and both orderings of Fig. 7 show; about an hour for `degradation`.
    "cpu": Scale("cpu", iterations=4_000, batch_size=128, train_subset=10_000, test_subset=2_000, depths=(20, 32),
                 table=(20, 32, 44, 56)),
    "full": Scale("full", iterations=64_000, batch_size=128, table=(20, 32, 44, 56, 110, 1202)),
}
