"""Helpers shared by the tests: interrupted runs, small chapter notebooks."""


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


def write_chapter(root, name, parameters, *cells):
    """A chapter source ``<root>/notebooks/<name>.ipynb``: a ``parameters`` cell, then code ``cells``;
    ``<root>/book/`` is created for its executed copy. Returns the source's path."""
    import nbformat

    (root / "notebooks").mkdir(exist_ok=True)
    (root / "book").mkdir(exist_ok=True)
    nb = nbformat.v4.new_notebook()
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    params = nbformat.v4.new_code_cell(parameters)
    params.metadata["tags"] = ["parameters"]
    nb.cells = [params, *(nbformat.v4.new_code_cell(c) for c in cells)]
    source = root / "notebooks" / f"{name}.ipynb"
    nbformat.write(nb, source)
    return source
