"""The ``gqcodec`` command line."""
from __future__ import annotations

import json
import sys

import click


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="gqcodec")
def main():
    """gqcodec: Gaussian-Quant neural image codec."""


@main.command()
@click.option("--run-dir", default="runs/default", show_default=True, help="checkpoint/log folder (resumes if a checkpoint is there)")
@click.option("--data", default=None, help="folder of training images [../shared/data/train]")
@click.option("--steps", default=1000, show_default=True, type=int, help="total steps to reach")
@click.option("--batch", default=8, show_default=True, type=int)
@click.option("--crop", default=128, show_default=True, type=int)
@click.option("--lr", default=2e-4, show_default=True, type=float)
@click.option("--lmbda", default=0.01, show_default=True, type=float, help="distortion weight (on 255^2 MSE)")
@click.option("--nested", default=0.5, show_default=True, type=float, help="probability of nested block dropout")
@click.option("--threads", default=0, type=int, help="torch CPU threads (0: default)")
@click.option("--device", default="auto", show_default=True)
@click.option("--init", default="", help="weights file to warm-start from when no checkpoint exists")
@click.option("--model-config", default="{}", help='JSON GQConfig fields, e.g. \'{"C": 320, "m": 16, "K_bits": 16}\'')
@click.option("--log-every", default=50, type=int, show_default=True)
@click.option("--val-every", default=500, type=int, show_default=True)
@click.option("--ckpt-every", default=200, type=int, show_default=True)
@click.option("--max-images", default=0, type=int, help="use only the first N images (0: all)")
@click.option("--no-progress", is_flag=True, help="print JSON log lines instead of a progress bar")
def train(run_dir, data, steps, batch, crop, lr, lmbda, nested, threads, device, init, model_config,
          log_every, val_every, ckpt_every, max_images, no_progress):
    """Train (or resume) a GQ-VAE with TDC.

    \b
    Example:
      gqcodec train --run-dir ~/gq-runs/base --steps 20000 --crop 128
    """
    from .train import DEFAULT_DATA, TrainConfig, train as run_train

    cfg = TrainConfig(data=data or str(DEFAULT_DATA), run_dir=run_dir, steps=steps, batch=batch, crop=crop,
                      lr=lr, lmbda=lmbda, nested=nested, threads=threads, device=device, init=init,
                      model=json.loads(model_config), log_every=log_every, val_every=val_every,
                      ckpt_every=ckpt_every, max_images=max_images)
    last = run_train(cfg, progress=not no_progress)
    click.echo(json.dumps(last))


if __name__ == "__main__":
    main()
