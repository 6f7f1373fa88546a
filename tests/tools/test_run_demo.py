"""tools/run_demo.py: suites, like-for-like rows, run directories per seed, the tables."""
import importlib.util
import json
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
    assert set(demo.BASELINES) == set(demo.SUITES)


def _student_of(cfg):
    model = cfg.model.get('student', cfg.model)
    return model['backbone'], cfg.model.get('connector')


def test_every_student_row_is_like_for_like():
    """The same student (IResNet-18 w8, 64-d) in every row but the teacher's, and one
    connector 64 -> 256 in every distiller: rows differ only in their losses."""
    from mmengine.config import Config

    demo = load_tool()
    rows = {n for names in demo.SUITES.values() for n in names} - {'teacher'}
    for name in sorted(rows):
        cfg = Config.fromfile(osp.join(REPO, demo.RUNS[name].config))
        backbone, connector = _student_of(cfg)
        assert (backbone['arch'], backbone['base_channels'], backbone['embedding_size'],
                backbone['input_size']) == (18, 8, 64, 56), name
        assert cfg.train_cfg.max_epochs == 8, name
        if 'student' in cfg.model:
            assert (connector['in_channels'], connector['out_channels']) == (64, 256), name


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


def test_tables_mean_std_and_paired_differences(monkeypatch):
    demo = load_tool()
    monkeypatch.setattr(demo, 'REFERENCE', {})  # read against the ablation: test below
    acc, tar = 'test/accuracy', 'test_all/tar@far=1e-02'
    results = {
        'teacher': {0: ({acc: 91.0, tar: 30.0}, 100.0)},
        'student': {0: ({acc: 80.0, tar: 10.0}, 10.0), 1: ({acc: 82.0, tar: 14.0}, 20.0),
                    2: ({acc: 84.0, tar: 12.0}, 30.0)},
        'fcd_bank': {0: ({acc: 81.0, tar: 12.0}, 12.0), 1: ({acc: 83.0, tar: 15.0}, 12.0),
                     2: ({acc: 85.0, tar: 16.0}, 12.0)},
    }
    text, summary = demo.tables(results, 'demo', ['teacher', 'student', 'fcd_bank'])
    main, vs_student, vs_fcd = text.split('\n\n')
    lines = main.splitlines()
    assert lines[0].startswith('| model | seeds | val acc (%) |')
    student = [c.strip() for c in lines[3].strip('|').split('|')]
    heads = [c.strip() for c in lines[0].strip('|').split('|')]
    # mean 82, sample std sqrt(((-2)^2 + 0 + 2^2) / 2) = 2; train time mean 20
    assert student[heads.index('test acc (%)')] == '82.00 ± 2.00'
    assert student[heads.index('all-pairs TAR@1e-2')] == '12.00 ± 2.00'
    assert student[-1] == '20' and student[heads.index('masked acc (%)')] == 'n/a'
    # FCD - student: +1 on every seed: sd 0, interval [1, 1]
    assert '| FCD | +1.00 [+1.00, +1.00] |' in vs_student
    # teacher - student accuracy: 11, 9, 7 -> mean 9, sd 2, t(0.975, 2) 4.3027 * 2 / sqrt(3)
    row = [r for r in vs_student.splitlines() if r.startswith('| teacher')][0]
    assert row.startswith('| teacher IResNet-18 (w32, 256-d) | +9.00 [+4.03, +13.97] |')
    assert vs_fcd.splitlines()[0].startswith('| vs FCD |')
    assert summary['figures']['student']['1'][acc] == 82.0
    assert summary['train_seconds']['teacher'] == {'0': 100.0}


def test_demo_table_is_read_against_the_ablation_seed_spread(tmp_path, monkeypatch):
    demo = load_tool()
    acc = 'test/accuracy'
    ablation = {'student': {s: ({acc: a}, 1.0) for s, a in enumerate((80.0, 82.0, 84.0))},
                'fcd_bank': {s: ({acc: a}, 1.0) for s, a in enumerate((81.5, 83.0, 85.5))}}
    _, ref = demo.tables(ablation, 'ablation', ['student', 'fcd_bank'])
    path = tmp_path / 'ablation.json'
    path.write_text(json.dumps(ref))
    monkeypatch.setattr(demo, 'REPO', '/')
    monkeypatch.setattr(demo, 'REFERENCE', {'demo': str(path)})
    one_seed = {'student': {0: ({acc: 80.0}, 1.0)}, 'fcd_bank': {0: ({acc: 82.0}, 1.0)}}
    text, _ = demo.tables(one_seed, 'demo', ['student', 'fcd_bank'])
    last = '\n\n'.join(text.split('\n\n')[-2:])
    assert last.startswith(f'Read against the seed spread of {path} (3 seeds')
    # ablation differences 1.5, 1.0, 1.5: sd 0.2887; +2.0 here > 2 sd -> clearly above
    assert '| FCD − student IResNet-18 (w8, 64-d) alone | test acc | +2.00 |' in last
    assert '| 0.29 | clearly above |' in last


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
    for split, tar in (('val', 0.5), ('test', 0.25)):
        (results / f'all_pairs_{split}.json').write_text(
            '{"tar_at_far": {"0.001": {"tar": %s, "measurable": true}}}' % tar)
    metrics, _ = demo.train_and_test(demo.RUNS['teacher'], args, 0)
    assert metrics == {'test/accuracy': 90.0, 'val_all/tar@far=1e-03': 50.0,
                       'test_all/tar@far=1e-03': 25.0}
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
