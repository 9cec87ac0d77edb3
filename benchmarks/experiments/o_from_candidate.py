"""One-off experiment, not part of qlts: DESIGN §1's cell variant with the output gate read from
the candidate stream, o = sigmoid(gamma_o * u + beta_o), instead of the shared gate signal a.

DESIGN §1 asks for this ablation before any change to the cell. The variant exists only here:
it replaces the reference step (``qlts.kernels.reference.qllstm_cell``) for this process and
runs ``benchmarks/forecasting.py`` with ``backend="torch"`` (the fused kernels compute the spec
cell only). ``spec`` runs the unpatched reference the same way, as the control.

    python benchmarks/experiments/o_from_candidate.py {ovar|spec} <forecasting.py arguments>

Keep its rows out of ``results/forecasting.csv`` (``--out`` elsewhere): they are not the spec cell.
"""
import functools
import os
import sys

import torch

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
import forecasting  # noqa: E402

import qlts.kernels.reference as reference  # noqa: E402


def o_from_candidate_cell(xw, h_prev, c_prev, h_skip, weight_hh, bias_u, gamma, beta, alpha, convex):
    """qlts.nn.functional.qllstm_cell with one change, marked below."""
    hidden = h_prev.shape[-1]
    z = xw + h_prev @ weight_hh.t()
    a = z[..., :hidden]
    u = z[..., hidden:] + bias_u
    i = torch.sigmoid(gamma[0] * a + beta[0])
    f = torch.sigmoid(gamma[1] * a + beta[1])
    o = torch.sigmoid(gamma[2] * u + beta[2])  # the change: u, not a
    c = f * c_prev + i * torch.tanh(u)
    h_tilde = o * torch.tanh(c)
    kappa = 1 - alpha if convex else 1
    return kappa * (f * h_prev + (1 - f) * h_tilde) + alpha * h_skip, c


def main(argv):
    if not argv or argv[0] not in ("ovar", "spec"):
        raise SystemExit(f"expected 'ovar' or 'spec' as the first argument, got {argv[:1]}")
    if argv[0] == "ovar":
        reference.qllstm_cell = o_from_candidate_cell
    forecasting.QLLSTMForecaster = functools.partial(forecasting.QLLSTMForecaster, backend="torch")
    return forecasting.main(argv[1:])


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
