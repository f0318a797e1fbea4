"""A PyTorch Lightning callback around :class:`~bayesactiv.monitor.FiringMonitor` (an
optional extra: ``pip install 'bayesactiv[monitor]'``).

:class:`FiringMonitorCallback` observes the monitor's probe at the end of every training
epoch (``trainer.current_epoch``) and, with ``count_training=True``, counts firing on the
epoch's training batches (the block of :meth:`FiringMonitor.training_batches` opened when the
epoch starts and closed when it ends; Lightning's validation passes run in eval mode and are
not counted). With a ``writer`` it writes the epoch's scalars to TensorBoard
(:func:`bayesactiv.monitor.tensorboard.write_scalars`). With an ``alarm``
(:class:`bayesactiv.monitor.FiringAlarm`) it checks the history after every observe
(:meth:`FiringMonitor.check`), keeps the result in ``callback.alarm_result``, writes each
layer's ``p_change`` (tag ``firing_alarm/<network>/<layer>/p_change``) and, with
``stop_on_alarm=True``, asks the trainer to stop when the alarm fires. One process: under a
multi-process strategy each rank would observe its own copy.
"""

from __future__ import annotations

import contextlib
from typing import Any

from bayesactiv.monitor.monitor import FiringMonitor

try:
    import lightning.pytorch as pl
except ImportError:  # pragma: no cover - the extra is installed with the test suite
    try:
        import pytorch_lightning as pl  # the package's older name
    except ImportError as err:
        raise ImportError("bayesactiv.monitor.lightning needs PyTorch Lightning: "
                          "pip install 'bayesactiv[monitor]' (or pip install lightning)") from err

__all__ = ["FiringMonitorCallback"]


class FiringMonitorCallback(pl.Callback):
    """Observe a :class:`FiringMonitor` at the end of every training epoch.

    Parameters
    ----------
    monitor : FiringMonitor
        Made on the LightningModule (or a module inside it) that the trainer fits.
    count_training : bool
        Also count firing on each epoch's training batches (needs a fixed threshold).
    observe : bool
        Observe the probe at each epoch's end (the monitor needs a probe then).
    writer : torch.utils.tensorboard.SummaryWriter, optional
        Write each epoch's scalars there (probe and, when counted, training batches).
    alarm : FiringAlarm, optional
        Check it after every observe; the last result is ``alarm_result``.
    stop_on_alarm : bool
        Set ``trainer.should_stop`` when the alarm fires (needs ``alarm``).

    Examples
    --------
    >>> import torch, lightning.pytorch as pl
    >>> from bayesactiv.monitor import FiringMonitor
    >>> from bayesactiv.monitor.lightning import FiringMonitorCallback
    >>> class Net(pl.LightningModule):
    ...     def __init__(self):
    ...         super().__init__()
    ...         self.body = torch.nn.Sequential(torch.nn.Linear(4, 8), torch.nn.ReLU(),
    ...                                         torch.nn.Linear(8, 2))
    ...     def forward(self, x):
    ...         return self.body(x)
    ...     def training_step(self, batch, i):
    ...         x, y = batch
    ...         return torch.nn.functional.cross_entropy(self(x), y)
    ...     def configure_optimizers(self):
    ...         return torch.optim.SGD(self.parameters(), lr=0.1)
    >>> x, y = torch.randn(32, 4), torch.randint(0, 2, (32,))
    >>> data = torch.utils.data.DataLoader(torch.utils.data.TensorDataset(x, y), batch_size=8)
    >>> net = Net()
    >>> mon = FiringMonitor(net, "body.1", probe=x, network="net")
    >>> import tempfile
    >>> trainer = pl.Trainer(max_epochs=2, accelerator="cpu", logger=False,
    ...                      enable_checkpointing=False, enable_progress_bar=False,
    ...                      enable_model_summary=False, default_root_dir=tempfile.mkdtemp(),
    ...                      callbacks=[FiringMonitorCallback(mon, count_training=True)])
    >>> trainer.fit(net, data)
    >>> mon.epochs, mon.training_epochs, int(mon.training_dataset()["n"][0])
    ([0, 1], [0, 1], 32)
    """

    def __init__(self, monitor: FiringMonitor, *, count_training: bool = False,
                 observe: bool = True, writer: Any = None, alarm: Any = None,
                 stop_on_alarm: bool = False):
        if not isinstance(monitor, FiringMonitor):
            raise TypeError(f"monitor: expected a FiringMonitor, got {type(monitor).__name__}")
        for name, value in (("count_training", count_training), ("observe", observe),
                            ("stop_on_alarm", stop_on_alarm)):
            if not isinstance(value, bool):
                raise TypeError(f"{name}: expected True or False, got {value!r}")
        if not (count_training or observe):
            raise ValueError("observe, count_training: both False; the callback would do nothing")
        if observe and monitor.probe is None:
            raise ValueError("monitor: has no probe to observe; pass observe=False to count "
                             "training batches only, or give the monitor a probe")
        if writer is not None and not hasattr(writer, "add_scalar"):
            raise TypeError(f"writer: expected a SummaryWriter, got {type(writer).__name__}")
        if alarm is not None:
            from bayesactiv.monitor.indicator import FiringAlarm

            if not isinstance(alarm, FiringAlarm):
                raise TypeError(f"alarm: expected a FiringAlarm, got {type(alarm).__name__}")
            if not observe:
                raise ValueError("alarm: watches the probe's history, but observe=False")
        elif stop_on_alarm:
            raise ValueError("stop_on_alarm: needs an alarm (alarm=FiringAlarm(...))")
        self.alarm = alarm
        self.stop_on_alarm = stop_on_alarm
        self.alarm_result: Any = None
        self.monitor = monitor
        self.count_training = count_training
        self.observe = observe
        self.writer = writer
        self._block: contextlib.ExitStack | None = None
        self._counted: Any = None

    def on_train_epoch_start(self, trainer: Any, pl_module: Any) -> None:
        if self.count_training:
            self._close(None)
            self._block = contextlib.ExitStack()
            self._counted = self._block.enter_context(
                self.monitor.training_batches(trainer.current_epoch))

    def on_train_epoch_end(self, trainer: Any, pl_module: Any) -> None:
        epoch = trainer.current_epoch
        if self._block is not None:
            self._close(None)
            if self.writer is not None and self._counted.dataset is not None:
                self._write(self._counted.dataset)
        if self.observe:
            ds = self.monitor.observe(epoch)
            if self.writer is not None:
                self._write(ds)
        if self.alarm is not None:
            self.alarm_result = self.monitor.check(self.alarm)
            now = self.alarm_result.table
            now = now[now["epoch"] == epoch]
            if self.writer is not None:
                for row in now.itertuples(index=False):
                    self.writer.add_scalar(f"firing_alarm/{row.network}/{row.layer}/p_change",
                                           float(row.p_change), global_step=epoch)
                self.writer.flush()
            if self.stop_on_alarm and self.alarm_result.fired:
                trainer.should_stop = True

    def on_exception(self, trainer: Any, pl_module: Any, exception: BaseException) -> None:
        self._close(exception)

    def teardown(self, trainer: Any, pl_module: Any, stage: str) -> None:
        self._close(RuntimeError("training ended inside an epoch"))

    def _close(self, exception: BaseException | None) -> None:
        """End the open block: its counts kept (no exception), or dropped."""
        block, self._block = self._block, None
        if block is None:
            return
        if exception is None:
            block.close()
        else:
            with contextlib.suppress(type(exception)):
                block.__exit__(type(exception), exception, exception.__traceback__)

    def _write(self, ds: Any) -> None:
        from bayesactiv.monitor.tensorboard import write_scalars

        write_scalars(self.writer, ds)
        self.writer.flush()
