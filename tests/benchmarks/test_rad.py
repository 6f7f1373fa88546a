"""coupleface.benchmarks.rad: the memory fit over (B_local, B_global) and the RAD inputs of a
simulated rank."""
import pytest

from coupleface.benchmarks.rad import fit_pairs, rad_memory_job


def test_fit_recovers_pair_and_row_terms():
    points = [(bl, bg, 36.0 * bl * bg + 6000.0 * (bl + bg))
              for bl, bg in [(512, 512), (1024, 1024), (512, 2048), (512, 8192)]]
    alpha, beta, resid = fit_pairs(points)
    assert alpha == pytest.approx(36.0) and beta == pytest.approx(6000.0)
    assert resid < 1e-9


def test_rad_memory_job_in_process_reports_a_peak():
    res = rad_memory_job('cpu', local=16, partners=32, dim=64)
    assert set(res) == {'peak_bytes', 'exact'} and res['peak_bytes'] >= 0
