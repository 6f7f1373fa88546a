"""The sections of the speed and memory benchmark suite (``tools/analysis_tools/benchmark.py``).

One module per section, each with a ``bench_<section>(args[, tmp])`` that prints its
Markdown section and returns its figures: :mod:`.step`, :mod:`.loader`, :mod:`.rad`,
:mod:`.mining`, :mod:`.head`, :mod:`.students`; :mod:`.common` and :mod:`.recordio_data`
hold what several of them use. The measuring (peak memory, child processes, interleaved
timing, tables) is :mod:`coupleface.utils.benchmarking`. Nothing here is imported by the
rest of the package.
"""

#: The sections, in the order they run.
SECTIONS = ('step', 'loader', 'rad', 'mining', 'head', 'students')

__all__ = ['SECTIONS']
