"""tools/run_demo.py: suites, run directories per seed, the mean ± std table."""
import importlib.util
import math
import os.path as osp
import sys

import pytest

REPO = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))


def load_tool():
    spec = importlib.util.spec_from_file_location('coupleface_run_demo',
                                                  osp.join(REPO, 'tools', 'run_demo.py'))
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up there
    spec.loader.exec_module(module)
    return module


def test_every_stage_config_exists_and_suites_list_known_runs():
    demo = load_tool()
    for suite, names in demo.SUITES.items():
        assert names[0] == 'teacher', suite
        for name in names:
            assert osp.isfile(osp.join(REPO, demo.RUNS[name].config)), demo.RUNS[name].config
    # the ablation's rows (a)-(e), in order, then the peers
    labels = [demo.RUNS[n].label[:3] for n in demo.SUITES['ablation'][1:6]]
    assert labels == ['(a)', '(b)', '(c)', '(d)', '(e)']


def test_seed_zero_shares_the_demo_dirs_other_seeds_do_not():
    demo = load_tool()
    args = demo.parse_args(['--work-dir', 'W'])
    assert demo.run_dir(args, 'student', 0) == osp.join('W', 'student')
    assert demo.run_dir(args, 'student', 2) == osp.join('W', 'seed2', 'student')
    assert demo.run_dir(args, 'teacher', 2) == osp.join('W', 'teacher')


def test_unknown_stage_is_a_usage_error(capsys):
    demo = load_tool()
    with pytest.raises(SystemExit):
        demo.parse_args(['--only', 'rkd'])  # a stage of the ablation suite only
    assert "not a stage of the demo suite" in capsys.readouterr().err


def test_table_mean_and_sample_std_over_seeds():
    demo = load_tool()
    acc = 'synth_test/accuracy'
    tar = 'synth_test/tar@far=1e-03'
    results = {
        'teacher': [({acc: 91.0, tar: 30.0}, 100.0)],
        'student': [({acc: 80.0, tar: 10.0}, 10.0), ({acc: 82.0, tar: 14.0}, 20.0),
                    ({acc: 84.0, tar: 12.0}, 30.0)],
    }
    text = demo.table(results, ['teacher', 'student', 'fcd'])
    lines = text.splitlines()
    assert lines[0].startswith('| model | seeds | val accuracy (%) | accuracy (%)')
    assert len(lines) == 4  # header, rule, two rows (fcd has no results)
    student = [c.strip() for c in lines[3].strip('|').split('|')]
    # mean 82, sample std sqrt(((-2)^2 + 0 + 2^2) / 2) = 2; TAR mean 12, std 2
    assert student[1:5] == ['3', 'n/a', '82.00 ± 2.00', '12.00 ± 2.00']
    assert student[5:7] == ['n/a', 'n/a'] and student[-1] == '20'
    teacher = [c.strip() for c in lines[2].strip('|').split('|')]
    assert teacher[1:5] == ['1', 'n/a', '91.00', '30.00']
    assert demo._fmt([math.nan]) == 'n/a'


def test_validation_metrics_are_the_last_logged(tmp_path):
    demo = load_tool()
    vis = tmp_path / '20261125_000000' / 'vis_data'
    vis.mkdir(parents=True)
    (vis / 'scalars.json').write_text(
        '{"loss": 3.0, "step": 1}\n'
        '{"synth_val/accuracy": 80.0, "synth_val/auc": 90.0, "step": 2}\n'
        '{"synth_val/accuracy": 85.5, "synth_val/auc": 93.0, "step": 4}\n')
    assert demo.validation_metrics(str(tmp_path)) == {'synth_val/accuracy': 85.5,
                                                      'synth_val/auc': 93.0}
    assert demo.validation_metrics(str(tmp_path / 'none')) == {}


def _fake_teacher(demo, tmp_path, difficulty):
    """A demo work dir whose teacher (and bank) were recorded for data of ``difficulty``."""
    import json

    from coupleface.utils.run_cache import fingerprint, write_record

    data = tmp_path / f'data{difficulty}'
    data.mkdir()
    (data / 'meta.json').write_text(json.dumps(dict(settings=dict(difficulty=difficulty))))
    args = demo.parse_args(['--work-dir', str(tmp_path / 'work'), '--data-dir', str(data)])
    teacher = tmp_path / 'work' / 'teacher'
    teacher.mkdir(parents=True)
    ckpt = teacher / 'epoch_4.pth'
    ckpt.write_bytes(b'teacher weights')
    (teacher / 'DONE').write_text(str(ckpt))
    spec = demo.RUNS['teacher']
    opts = demo.data_options(spec, args) + ['randomness.seed=0']
    write_record(str(ckpt), fingerprint(spec.config, opts, str(data), {}))
    return args, ckpt


def test_reused_teacher_from_other_data_stops_the_demo(tmp_path, monkeypatch):
    demo = load_tool()
    args, ckpt = _fake_teacher(demo, tmp_path, 0.7)
    monkeypatch.setattr(demo, 'run', lambda cmd: pytest.fail(f'nothing may run: {cmd}'))
    monkeypatch.setattr(demo, '_has_masked', lambda path: True)
    monkeypatch.setattr(demo, 'validation_metrics', lambda work: {})
    # the same data: reused (its metrics are read from results/metrics.json)
    results = ckpt.parent / 'results'
    results.mkdir()
    (results / 'metrics.json').write_text('{"synth_test/accuracy": 90.0}')
    metrics, _ = demo.train_and_test(demo.RUNS['teacher'], args, 0)
    assert metrics['synth_test/accuracy'] == 90.0
    # the data folder now holds harder SynthFaces: the teacher is stale
    (tmp_path / 'data0.7' / 'meta.json').write_text('{"settings": {"difficulty": 0.8}}')
    with pytest.raises(SystemExit, match='demo stopped: .*epoch_4.pth was made from another '
                       'data than this run uses'):
        demo.train_and_test(demo.RUNS['teacher'], args, 0)


def test_bank_of_another_teacher_stops_the_demo(tmp_path, monkeypatch):
    from coupleface.utils.run_cache import write_record

    demo = load_tool()
    args, ckpt = _fake_teacher(demo, tmp_path, 0.7)
    prefix = tmp_path / 'work' / 'teacher_bank' / 'synthfaces'
    prefix.parent.mkdir()
    prefix.with_suffix('.json').write_text('{}')
    bank = tmp_path / 'work' / 'teacher_bank' / 'synthfaces.npy'
    bank.write_bytes(b'bank rows')
    monkeypatch.setattr(demo, 'run', lambda cmd: pytest.fail(f'nothing may run: {cmd}'))
    write_record(str(bank), {'config': 'c', 'data': 'd', 'extra': 'another teacher'})
    with pytest.raises(SystemExit, match='synthfaces.npy was made from another config and '
                       'data and extra than this run uses'):
        demo.teacher_bank(args)
