"""Helpers shared by the tests of interrupted runs."""


def interrupt_at_call(monkeypatch, module, name, number):
    """Make the ``number``-th call (1-based) of ``module.name`` raise KeyboardInterrupt, as a kill would."""
    original, calls = getattr(module, name), []

    def interrupted(*args, **kwargs):
        calls.append(1)
        if len(calls) == number:
            raise KeyboardInterrupt
        return original(*args, **kwargs)

    monkeypatch.setattr(module, name, interrupted)


def trajectory(record):
    """(epoch, train loss, test error, lr) of every epoch of a RunRecord."""
    return [(e.epoch, e.train_loss, e.test_error_pct, e.lr) for e in record.epochs]
