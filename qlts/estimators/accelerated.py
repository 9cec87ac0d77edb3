"""Multi-process and multi-GPU training: the estimators with skorch's Hugging Face Accelerate
integration (:class:`skorch.hf.AccelerateMixin`, data-parallel DDP under ``torchrun`` or
``accelerate launch``). Needs ``pip install accelerate``.

    from accelerate import Accelerator
    from accelerate.utils import DataLoaderConfiguration
    from qlts.estimators.accelerated import AcceleratedQLLSTMRegressor

    acc = Accelerator(dataloader_config=DataLoaderConfiguration(split_batches=True))
    reg = AcceleratedQLLSTMRegressor(accelerator=acc, hidden_size=64, random_state=0).fit(X, y)
    reg.save("model.qlts")  # written by the main process only; load with QLLSTMRegressor.load
    acc.end_training()  # destroy the process group before exit (gloo can abort at exit otherwise)

Every process runs the same script on the same data. Accelerate shards each batch of the
training iterator over the processes and DDP averages the gradients, so with
``split_batches=True`` every optimiser step sees the same ``batch_size`` windows as a
single-process fit (the default ``split_batches=False`` gives each process its own
``batch_size`` windows: an effective batch of ``batch_size * processes``). Predictions are
gathered from all processes, so ``predict`` returns every row on every process.

The arguments are those of :class:`~qlts.QLLSTMClassifier` / :class:`~qlts.QLLSTMRegressor`
plus ``accelerator`` (an ``accelerate.Accelerator``) and ``unwrap_after_train``;
``device`` defaults to None because the accelerator places the model and the batches.
docs/scaling.md has the launch commands.
"""
from __future__ import annotations

import contextlib

from skorch.hf import AccelerateMixin

from ..utils import resolve_device
from .classifier import QLLSTMClassifier
from .regressor import QLLSTMRegressor

__all__ = ["AcceleratedQLLSTMClassifier", "AcceleratedQLLSTMRegressor"]


class _AcceleratedEstimator(AccelerateMixin):
    # The base estimators resolve device="auto"; with an accelerator, None must stay None
    # (skorch then leaves tensors where the accelerator put them).
    @property
    def device(self):
        value = self.__dict__.get("device")
        return resolve_device(value) if isinstance(value, str) and value == "auto" else value

    @device.setter
    def device(self, value):
        self.__dict__["device"] = value

    def _initialize_callbacks(self):
        # skorch's "auto" sink (accelerator.print) prints the epoch table even with verbose=0;
        # plain print keeps the base estimators' rule (silent unless verbose).
        if not self.verbose and isinstance(self.callbacks__print_log__sink, str):
            self.callbacks__print_log__sink = print
        return super()._initialize_callbacks()

    @contextlib.contextmanager
    def _seeded(self, reset=True):
        # The base class forks the RNG of self.device when it enters; here that is the
        # accelerator's device, and device must be None again while the seeded code runs.
        given = self.__dict__.get("device")
        self.__dict__["device"] = str(self.accelerator.device)
        try:
            with super()._seeded(reset=reset):
                self.__dict__["device"] = given
                yield
        finally:
            self.__dict__["device"] = given

    def _initialize_accelerator(self):
        # DDP refuses a module without trainable parameters, such as a plain loss (multi-CPU
        # runs hit it; huggingface/accelerate#760): leave parameter-free criteria unprepared.
        criteria = self._criteria
        self._criteria = [name for name in criteria
                          if any(p.requires_grad for p in getattr(getattr(self, name + "_"), "parameters", list)())]
        try:
            return super()._initialize_accelerator()
        finally:
            self._criteria = criteria

    def save(self, path):
        """Write the fitted model (see :meth:`QLLSTMRegressor.save`) from the main process only,
        after all processes have finished training; read it back with the plain estimator's
        ``load``. Every process must call it (it waits for all of them)."""
        self.accelerator.wait_for_everyone()
        if self.accelerator.is_main_process:
            self._plain().save(path)
        self.accelerator.wait_for_everyone()

    def _plain(self):
        """The same fitted model as a plain (unaccelerated) estimator, sharing the weights."""
        plain_cls = next(c for c in type(self).__mro__ if c in (QLLSTMClassifier, QLLSTMRegressor))
        params = {name: getattr(self, name) for name in plain_cls._top_level_params()}
        params.update({k: v for k, v in self.get_params(deep=False).items() if k.startswith("module__")})
        params["device"] = "auto" if self.device is None else self.device
        plain = plain_cls(**params)
        plain._restore_fitted_state(self._fitted_state())
        with plain._current_init_context("module"):  # skorch guards module_ outside initialize
            plain.module_ = self.accelerator.unwrap_model(self.module_, keep_fp32_wrapper=False)
        plain.initialized_ = True
        return plain

    @classmethod
    def load(cls, path):
        raise TypeError(f"{cls.__name__}.load: load the file with the plain estimator "
                        f"({cls.__name__.replace('Accelerated', '')}.load) instead")


class AcceleratedQLLSTMClassifier(_AcceleratedEstimator, QLLSTMClassifier):
    """:class:`~qlts.QLLSTMClassifier` trained through an ``accelerate.Accelerator`` (DDP,
    mixed precision); see :mod:`qlts.estimators.accelerated`."""


class AcceleratedQLLSTMRegressor(_AcceleratedEstimator, QLLSTMRegressor):
    """:class:`~qlts.QLLSTMRegressor` trained through an ``accelerate.Accelerator`` (DDP,
    mixed precision); see :mod:`qlts.estimators.accelerated`."""
