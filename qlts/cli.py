"""The ``qlts`` command line. Each subcommand registers itself in :func:`build_parser`."""
from __future__ import annotations

import argparse
import sys


def _adding(args):
    from .demo import run_adding_demo

    run_adding_demo(T=args.T, steps=args.steps, hidden_size=args.hidden_size, out_dir=args.out, seed=args.seed)


def _add_adding_arguments(parser):
    from .demo import DEFAULT_STEPS, DEFAULT_T

    parser.add_argument("--T", type=int, default=DEFAULT_T, help=f"sequence length (default {DEFAULT_T})")
    parser.add_argument("--steps", type=int, default=DEFAULT_STEPS, help="training steps per model")
    parser.add_argument("--hidden-size", type=int, default=32)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", default="qlts_demo_output", help="folder for the loss-curve PNG")


def build_parser():
    from . import __version__

    parser = argparse.ArgumentParser(prog="qlts", description="QL-LSTM for sequences and time series")
    parser.add_argument("--version", action="version", version=f"qlts {__version__}")
    sub = parser.add_subparsers(dest="command", required=True)
    from .forecasting.cli import register as register_forecasting

    register_forecasting(sub)  # forecast, backtest, and the main-job demo (`qlts demo --adding` = `qlts adding`)
    adding = sub.add_parser("adding", help="QL-LSTM vs LSTM on the adding problem")
    _add_adding_arguments(adding)
    adding.set_defaults(func=_adding)
    return parser


def main(argv=None):
    args = build_parser().parse_args(argv)
    args.func(args)
    return 0


if __name__ == "__main__":
    sys.exit(main())
