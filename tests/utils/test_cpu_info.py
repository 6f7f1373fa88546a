"""describe_cpu: model name, widest vector ISA and a forced oneDNN ISA from /proc/cpuinfo."""
import coupleface.utils.cpu_info as cpu_info


def _fake(monkeypatch, flags: str) -> None:
    monkeypatch.setattr(cpu_info, '_cpuinfo',
                        lambda: {'model name': 'AMD EPYC 9B14', 'flags': flags})


def test_widest_isa_and_forced_isa(monkeypatch):
    monkeypatch.delenv('ONEDNN_MAX_CPU_ISA', raising=False)
    _fake(monkeypatch, 'fpu sse avx avx2 fma avx512f avx512dq')
    assert cpu_info.describe_cpu() == 'AMD EPYC 9B14 (avx512f)'
    _fake(monkeypatch, 'fpu sse avx avx2 fma')  # Zen 3
    assert cpu_info.describe_cpu() == 'AMD EPYC 9B14 (avx2)'
    monkeypatch.setenv('ONEDNN_MAX_CPU_ISA', 'AVX2')
    assert cpu_info.describe_cpu() == 'AMD EPYC 9B14 (avx2; ONEDNN_MAX_CPU_ISA=AVX2)'


def test_first_processor_block_is_read(tmp_path, monkeypatch):
    text = ('processor\t: 0\nmodel name\t: CPU A\nflags\t\t: avx2\n\n'
            'processor\t: 1\nmodel name\t: CPU B\nflags\t\t: avx512f\n')
    real_open = open
    monkeypatch.setattr('builtins.open', lambda path, *a, **k: real_open(
        tmp_path / 'cpuinfo', *a, **k) if path == '/proc/cpuinfo' else real_open(path, *a, **k))
    (tmp_path / 'cpuinfo').write_text(text)
    assert cpu_info._cpuinfo() == {'processor': '0', 'model name': 'CPU A', 'flags': 'avx2'}
