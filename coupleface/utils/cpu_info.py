"""The CPU a figure was measured on: model name, vector ISA and oneDNN's forced ISA.

The same machine kind hands out AMD Zen 4 (AVX-512) and Zen 3 (AVX2 only) CPUs, and oneDNN
takes other kernels on each (``ONEDNN_MAX_CPU_ISA=AVX2`` forces the AVX2 ones), so speed
ratios differ between them: every benchmark prints :func:`describe_cpu` beside its figures.
"""
from __future__ import annotations

import os
import platform
from typing import Dict


def _cpuinfo() -> Dict[str, str]:
    info: Dict[str, str] = {}
    try:
        with open('/proc/cpuinfo') as f:
            for line in f:
                if ':' in line:
                    key, value = (part.strip() for part in line.split(':', 1))
                    info.setdefault(key, value)
    except OSError:
        pass
    return info


def cpu_model() -> str:
    """The CPU model name (``/proc/cpuinfo``; ``platform`` where it is missing)."""
    return _cpuinfo().get('model name') or platform.processor() or platform.machine()


def describe_cpu() -> str:
    """One line: CPU model, its widest x86 vector ISA and any forced oneDNN ISA.

    Returns:
        str: e.g. ``'AMD EPYC (avx512f; ONEDNN_MAX_CPU_ISA=AVX2)'`` or
        ``'AMD EPYC (avx2)'``.
    """
    info = _cpuinfo()
    name = cpu_model()
    flags = set(info.get('flags', '').split())
    isa = next((f for f in ('avx512f', 'avx2', 'avx') if f in flags), 'no avx')
    forced = os.environ.get('ONEDNN_MAX_CPU_ISA')
    return f'{name} ({isa}' + (f'; ONEDNN_MAX_CPU_ISA={forced})' if forced else ')')
