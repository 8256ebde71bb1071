"""End-to-end training time of pyromix's ``fit`` against pythae's trainer, same VAE, same epochs.

Both train the VAE of ``vae_step_time.py`` (MLP 64-256-256-10 encoder, mirrored Bernoulli decoder,
analytic KL, Adam lr 1e-3, batch 100) on the statically binarised digits training split and
validate on its validation split after every epoch; pyromix also writes its checkpoint after the
first and last epochs and every 10 s, as the CLI does, and pythae saves its final model, as its
trainer does. The two run in alternating order in one process (A, B, B, A, ...), one torch
thread, after an untimed run of two epochs each, and the ratio of their wall
times per repeat is reported with the final validation loss of each (nats per point; pythae's own
loss, its sum over the batch averaged over points).

pythae is not a pyromix dependency: this script installs it into ``--pythae-dir`` (a folder on
sys.path for this process only) if it is not importable.

Run:
    python benchmarks/pythae_fit.py [--epochs 20] [--repeats 2] [--json PATH]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time

import torch
from torch import nn

from pyromix.data import load_dataset
from pyromix.recipes import COMMON_DEFAULTS, RECIPES
from pyromix.runs import CHECKPOINT_EVERY
from pyromix.train import fit


def import_pythae(folder: str):
    try:
        import pythae  # noqa: F401
    except ImportError:
        command = [sys.executable, "-m", "pip", "install", "-q", "--target", folder]
        subprocess.run([*command, "--no-deps", "pythae"], check=True)
        subprocess.run([*command, "pydantic", "imageio"], check=True)
        sys.path.insert(0, folder)
    from pythae.models import VAE, VAEConfig
    from pythae.models.base.base_utils import ModelOutput
    from pythae.models.nn import BaseDecoder, BaseEncoder
    from pythae.trainers import BaseTrainer, BaseTrainerConfig

    return VAE, VAEConfig, ModelOutput, BaseDecoder, BaseEncoder, BaseTrainer, BaseTrainerConfig


def pythae_run(pythae, x_train, x_val, epochs: int, out: str) -> float:
    VAE, VAEConfig, ModelOutput, BaseDecoder, BaseEncoder, BaseTrainer, BaseTrainerConfig = pythae

    class Encoder(BaseEncoder):
        def __init__(self):
            super().__init__()
            self.body = nn.Sequential(nn.Linear(64, 256), nn.ReLU(), nn.Linear(256, 256), nn.ReLU())
            self.mu, self.log_var = nn.Linear(256, 10), nn.Linear(256, 10)

        def forward(self, x):
            h = self.body(x.reshape(len(x), -1))
            return ModelOutput(embedding=self.mu(h), log_covariance=self.log_var(h))

    class Decoder(BaseDecoder):
        def __init__(self):
            super().__init__()
            self.net = nn.Sequential(
                nn.Linear(10, 256), nn.ReLU(), nn.Linear(256, 256), nn.ReLU(), nn.Linear(256, 64)
            )

        def forward(self, z):
            return ModelOutput(reconstruction=torch.sigmoid(self.net(z)))

    config = VAEConfig(input_dim=(64,), latent_dim=10, reconstruction_loss="bce")
    model = VAE(config, encoder=Encoder(), decoder=Decoder())
    trainer_config = BaseTrainerConfig(
        output_dir=out,
        num_epochs=epochs,
        learning_rate=1e-3,
        per_device_train_batch_size=100,
        per_device_eval_batch_size=1000,
        steps_saving=None,
        no_cuda=True,
    )
    from pythae.data.datasets import BaseDataset

    train, val = (BaseDataset(x, torch.zeros(len(x))) for x in (x_train, x_val))
    trainer = BaseTrainer(model, train, val, training_config=trainer_config)
    trainer.train()
    return float(trainer.eval_step(epochs))


def pyromix_run(data, epochs: int, out: str) -> float:
    args = {**COMMON_DEFAULTS, "data_dim": 64, "image_shape": (8, 8)}
    model, guide = RECIPES["vae"].build(args)
    history = fit(
        model,
        guide,
        data,
        RECIPES["vae"].objective(args),
        epochs=epochs,
        checkpoint=os.path.join(out, "checkpoint.pt"),
        checkpoint_every=CHECKPOINT_EVERY,  # the CLI's default
        progress=False,
    )
    return history.val_loss[-1]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--epochs", type=int, default=20)
    parser.add_argument("--repeats", type=int, default=2, help="pairs of runs")
    parser.add_argument("--pythae-dir", default=os.path.join(tempfile.gettempdir(), "pythae_pkgs"))
    parser.add_argument("--json", metavar="PATH")
    opts = parser.parse_args()
    torch.set_num_threads(1)
    pythae = import_pythae(opts.pythae_dir)
    data = load_dataset("digits", binarize="static")
    sides = {
        "pyromix": lambda out: pyromix_run(data, opts.epochs, out),
        "pythae": lambda out: pythae_run(pythae, data.train.x, data.val.x, opts.epochs, out),
    }
    warm = {  # two epochs: pyromix captures its first step there (torch's compiler imports)
        "pyromix": lambda out: pyromix_run(data, 2, out),
        "pythae": lambda out: pythae_run(pythae, data.train.x, data.val.x, 2, out),
    }
    for name in warm:  # untimed: one-off imports (torch._dynamo, torch._inductor), first calls
        with tempfile.TemporaryDirectory() as out:
            warm[name](out)
    seconds, losses = {k: [] for k in sides}, {k: [] for k in sides}
    cpu = {k: [] for k in sides}  # process CPU time: less sensitive to a busy machine
    load = os.getloadavg()[0]
    for r in range(opts.repeats):
        for name in list(sides)[:: 1 if r % 2 == 0 else -1]:
            torch.manual_seed(r)
            with tempfile.TemporaryDirectory() as out:
                started, cpu_started = time.perf_counter(), time.process_time()
                losses[name].append(sides[name](out))
                seconds[name].append(time.perf_counter() - started)
                cpu[name].append(time.process_time() - cpu_started)
    ratios = [a / b for a, b in zip(seconds["pyromix"], seconds["pythae"])]
    cpu_ratios = [a / b for a, b in zip(cpu["pyromix"], cpu["pythae"])]
    print(f"load average at start {load:.2f}, at end {os.getloadavg()[0]:.2f}")
    print(f"vae on digits, {opts.epochs} epochs, {opts.repeats} runs each, 1 torch thread")
    for name in sides:
        print(
            f"  {name:<8} {statistics.median(seconds[name]):7.2f} s   final validation loss "
            f"{statistics.median(losses[name]):.3f}"
        )
    print(f"ratio pyromix/pythae wall time: {statistics.median(ratios):.2f} (runs: {ratios})")
    print(f"ratio pyromix/pythae CPU time: {statistics.median(cpu_ratios):.2f} (runs: {cpu_ratios})")
    if opts.json:
        with open(opts.json, "w") as f:
            results = {"epochs": opts.epochs, "seconds": seconds, "cpu_seconds": cpu}
            json.dump({**results, "losses": losses, "load": load}, f, indent=2)


if __name__ == "__main__":
    main()
